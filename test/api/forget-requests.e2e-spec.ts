import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { LedgerEvent, hashEvent } from '@lethe/events';
import { AppendedEntry, Ledger, SampleVault, openDatabase } from '@lethe/ledger';
import { fromHex, toHex, verifyInclusion } from '@lethe/merkle';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { ForgetRequestService } from '../../apps/api/src/forget-requests/forget-request.service';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { sharedTestKeyStore } from '../support/key-store';

/**
 * A ledger whose next FORGET_REQUESTED append fails, as a database outage would make it, or (loseNextForgetAnswer)
 * is written but its answer lost, as a connection dropped after COMMIT would make it.
 */
class FlakyLedger extends Ledger {
  failNextForget = false;
  loseNextForgetAnswer = false;

  override async append(events: LedgerEvent[]): Promise<AppendedEntry[]> {
    if (this.failNextForget && events.some((e) => e.type === 'FORGET_REQUESTED')) {
      this.failNextForget = false;
      throw new Error('the database went away');
    }
    const entries = await super.append(events);
    if (this.loseNextForgetAnswer && events.some((e) => e.type === 'FORGET_REQUESTED')) {
      this.loseNextForgetAnswer = false;
      throw new Error('the connection dropped after COMMIT');
    }
    return entries;
  }
}

/** What was durable when the intake handed a request on (before it answered the client). */
interface Snapshot {
  requestId: string;
  jobId: string;
  row: { state: string; ledger_index: string | null } | undefined;
  entry: { type: string; event: string } | undefined;
}

describe('forget requests', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: FlakyLedger;
  let app: INestApplication;
  let ml: string;
  let auditor: string;
  let datasetId: string;
  const commitments = new Map<string, string>();
  const snapshots: Snapshot[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('forget_api');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    ledger = new FlakyLedger(dataSource);
    const queue: ForgetRequestQueue = {
      enqueue: async ({ requestId, jobId }) => {
        const [row] = await dataSource.query(`SELECT state, ledger_index FROM forget_requests WHERE id = $1`, [requestId]);
        const [entry] = row?.ledger_index
          ? await dataSource.query(`SELECT type, event FROM ledger_entries WHERE idx = $1`, [row.ledger_index])
          : [];
        snapshots.push({ requestId, jobId, row, entry });
      },
    };
    app = await createApp({
      keyStore: await sharedTestKeyStore(),
      config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }),
      dataSource,
      ledger,
      forgetRequestQueue: queue,
    });
    await app.init();
    const keys = new ApiKeyService(dataSource);
    ml = (await keys.create('ml')).key;
    auditor = (await keys.create('auditor')).key;
    datasetId = (
      await request(app.getHttpServer())
        .post('/v1/datasets')
        .auth(ml, { type: 'bearer' })
        .send({ name: 'd', features: 2, classes: 2 })
        .expect(201)
    ).body.id;
    const samples = [
      ...['alice-1', 'alice-2', 'alice-3'].map((externalId, i) => ({ externalId, subjectId: 'alice', features: [i, 1], label: 0 })),
      ...Array.from({ length: 10 }, (_, i) => ({ externalId: `s-${i}`, subjectId: `subject-${i}`, features: [i, 2], label: 1 })),
    ];
    const upload = await request(app.getHttpServer())
      .post(`/v1/datasets/${datasetId}/samples`)
      .auth(ml, { type: 'bearer' })
      .send(samples)
      .expect(200);
    for (const c of upload.body.commitments) commitments.set(c.externalId, c.commitment);
  });

  afterAll(async () => {
    await app.close();
    await dataSource.destroy();
    await db.drop();
  });

  const http = () => request(app.getHttpServer());
  const treeSize = async (): Promise<number> => (await ledger.getCheckpoint()).treeSize;
  const forget = (body: object) => http().post('/v1/forget-requests').auth(ml, { type: 'bearer' }).send(body);

  it('202s only once the row and the FORGET_REQUESTED entry are durable, and shreds nothing yet', async () => {
    const before = await treeSize();
    const res = await forget({ datasetId, externalIds: ['s-1', 's-0'], reason: 'GDPR art. 17' }).expect(202);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      state: 'received',
      ledgerIndex: before,
      leafHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const snapshot = snapshots.find((s) => s.requestId === res.body.id)!;
    expect(snapshot.row).toEqual({ state: 'received', ledger_index: String(before) });
    expect(JSON.parse(snapshot.entry!.event)).toEqual({
      type: 'FORGET_REQUESTED',
      version: 1,
      requestId: res.body.id,
      datasetId,
      commitments: [commitments.get('s-0'), commitments.get('s-1')], // upload order
      reason: 'GDPR art. 17',
    });
    expect(toHex(hashEvent(JSON.parse(snapshot.entry!.event)))).toBe(res.body.leafHash);
    // Nothing is erased before unlearning: the sample is still there, and opens.
    const vault = new SampleVault(dataSource, new Ledger(dataSource), await sharedTestKeyStore());
    const [sample] = (await vault.readSamples({ datasetId })).filter((s) => s.externalId === 's-0');
    expect(sample).toMatchObject({ features: [0, 2], salt: expect.any(Buffer), commitment: commitments.get('s-0') });
    expect(await vault.findCommitment(commitments.get('s-0')!)).toMatchObject({ forgotten: false });
  });

  it('answers GET with the commitments and a receipt whose proof verifies against the log', async () => {
    const created = (await forget({ datasetId, externalIds: ['s-2'], reason: 'erasure' }).expect(202)).body;
    const res = await http().get(`/v1/forget-requests/${created.id}`).auth(auditor, { type: 'bearer' }).expect(200);
    expect(res.body).toEqual({
      id: created.id,
      state: 'received',
      datasetId,
      samples: [commitments.get('s-2')],
      reason: 'erasure',
      approach: 'exact',
      mode: 'forget',
      steps: [],
      ledgerIndex: created.ledgerIndex,
      leafHash: created.leafHash,
      createdAt: expect.any(String),
      jobId: created.jobId,
      progress: 0,
      modelVersions: [],
      evidence: null,
      receipt: {
        ledgerIndex: created.ledgerIndex,
        leafHash: created.leafHash,
        event: expect.any(String),
        inclusionProof: { treeSize: await treeSize(), rootHash: (await ledger.getCheckpoint()).rootHash, proof: expect.any(Array) },
        anchor: null,
        firstAnchor: null,
      },
    });
    const { receipt } = res.body;
    verifyInclusion(
      receipt.ledgerIndex,
      receipt.inclusionProof.treeSize,
      fromHex(receipt.leafHash),
      receipt.inclusionProof.proof.map((h: string) => fromHex(h)),
      fromHex(receipt.inclusionProof.rootHash),
    );
    const list = await http().get(`/v1/forget-requests?datasetId=${datasetId}&limit=1000`).auth(ml, { type: 'bearer' }).expect(200);
    expect(list.body.map((r: { id: string }) => r.id)).toContain(created.id);
    await http().get('/v1/forget-requests?datasetId=nope').auth(ml, { type: 'bearer' }).expect(400);
    await http().get('/v1/forget-requests/00000000-0000-4000-8000-000000000000').auth(ml, { type: 'bearer' }).expect(404);
  });

  it('joins every request of a dataset to its one waiting unlearning pass, a job clients can poll', async () => {
    const otherDataset = (
      await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'other', features: 2, classes: 2 }).expect(201)
    ).body.id;
    await http()
      .post(`/v1/datasets/${otherDataset}/samples`)
      .auth(ml, { type: 'bearer' })
      .send([{ externalId: 'o-1', features: [1, 1], label: 0 }])
      .expect(200);
    const notified = snapshots.length;
    const a = (await forget({ datasetId, externalIds: ['s-7'], reason: 'erasure' }).expect(202)).body;
    const concurrent = await Promise.all(
      ['s-8', 's-9', 'alice-1'].map((e) => forget({ datasetId, externalIds: [e], reason: 'erasure' }).expect(202)),
    );
    const other = (await forget({ datasetId: otherDataset, externalIds: ['o-1'], reason: 'erasure' }).expect(202)).body;
    expect(concurrent.map((r) => r.body.jobId)).toEqual([a.jobId, a.jobId, a.jobId]);
    expect(other.jobId).not.toBe(a.jobId);
    const passes: { id: string; dataset: string }[] = await dataSource.query(
      `SELECT id, payload->>'datasetId' AS dataset FROM jobs WHERE type = 'lethe.unlearn' AND state = 'queued' ORDER BY created_at`,
    );
    expect(passes).toEqual([
      { id: a.jobId, dataset: datasetId },
      { id: other.jobId, dataset: otherDataset },
    ]);
    // One notification per request, each naming the same waiting pass (pg-boss keeps one job per id).
    expect(snapshots.slice(notified).map((n) => n.jobId)).toEqual([a.jobId, a.jobId, a.jobId, a.jobId, other.jobId]);
    const job = await http().get(`/v1/jobs/${a.jobId}`).auth(auditor, { type: 'bearer' }).expect(200);
    expect(job.body).toEqual({
      id: a.jobId,
      type: 'lethe.unlearn',
      state: 'queued',
      progress: 0,
      tasks: [],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    // Free these samples for the later tests: this file has no worker, so nothing would serve them.
    const ids = [a.id, ...concurrent.map((r) => r.body.id), other.id];
    await dataSource.query(`UPDATE forget_requests SET state = 'failed' WHERE id = ANY($1::uuid[])`, [ids]);
  });

  it('forgets every sample of a subject', async () => {
    const res = await forget({ datasetId, subjectId: 'alice', reason: 'erasure' }).expect(202);
    const event = JSON.parse((await ledger.getEntries(res.body.ledgerIndex, 1))[0].event);
    expect(event.commitments).toEqual(['alice-1', 'alice-2', 'alice-3'].map((e) => commitments.get(e)));
  });

  it('is idempotent: asking again for samples already requested answers the earlier request and logs nothing', async () => {
    const first = (await forget({ datasetId, externalIds: ['s-3', 's-4'], reason: 'erasure' }).expect(202)).body;
    const before = await treeSize();
    const again = await forget({ datasetId, externalIds: ['s-4', 's-3', 's-3'], reason: 'again' }).expect(202);
    expect(again.body).toEqual(first);
    const subset = await forget({ datasetId, externalIds: ['s-4'], reason: 'again' }).expect(202);
    expect(subset.body.id).toBe(first.id);
    expect(await treeSize()).toBe(before);
    // Two identical requests at once make one request.
    const [a, b] = await Promise.all([
      forget({ datasetId, externalIds: ['s-5'], reason: 'race' }),
      forget({ datasetId, externalIds: ['s-5'], reason: 'race' }),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.id).toBe(b.body.id);
    expect(await treeSize()).toBe(before + 1);
    // A request that adds a sample not yet requested is a new one.
    const wider = await forget({ datasetId, externalIds: ['s-4', 's-6'], reason: 'more' }).expect(202);
    expect(wider.body.id).not.toBe(first.id);
  });

  it.each([
    [{ externalIds: ['s-7', 'nobody', 'ghost'], reason: 'r' }, 404, '"nobody", "ghost"'],
    [{ subjectId: 'nobody', reason: 'r' }, 404, 'subjectId'],
    [{ externalIds: ['s-7'], subjectId: 'subject-7', reason: 'r' }, 400, 'exactly one of externalIds and subjectId'],
    [{ reason: 'r' }, 400, 'exactly one of externalIds and subjectId'],
    [{ externalIds: [], reason: 'r' }, 400, 'externalIds'],
    [{ externalIds: Array.from({ length: 10_001 }, (_, i) => `x${i}`), reason: 'r' }, 400, 'externalIds'],
    [{ externalIds: ['x'.repeat(201)], reason: 'r' }, 400, 'externalIds'],
    [{ externalIds: [7], reason: 'r' }, 400, 'externalIds'],
    [{ externalIds: ['s-7'] }, 400, 'reason'],
    [{ externalIds: ['s-7'], reason: 'r'.repeat(1001) }, 400, 'reason'],
    [{ externalIds: ['s-7'], reason: 'r', datasetId: 'not-a-uuid' }, 400, 'datasetId'],
    [{ externalIds: ['s-7'], reason: 'r', datasetId: '00000000-0000-4000-8000-000000000000' }, 404, 'dataset'],
  ])('%j is a %d naming %s, and nothing is logged or stored', async (body, status, message) => {
    const before = await treeSize();
    const [{ rows }] = await dataSource.query(`SELECT count(*)::int AS rows FROM forget_requests`);
    const res = await forget({ datasetId, ...body }).expect(status);
    expect(res.body.message).toContain(message);
    expect(await treeSize()).toBe(before);
    expect((await dataSource.query(`SELECT count(*)::int AS rows FROM forget_requests`))[0].rows).toBe(rows);
  });

  it('does not acknowledge a request it could not log, and logs it at the next start', async () => {
    ledger.failNextForget = true;
    const before = await treeSize();
    const res = await forget({ datasetId, externalIds: ['s-8'], reason: 'outage' });
    expect(res.status).toBe(500);
    expect(await treeSize()).toBe(before);
    const [row] = await dataSource.query(`SELECT id, ledger_index FROM forget_requests WHERE reason = 'outage'`);
    expect(row.ledger_index).toBeNull();
    await http().get(`/v1/forget-requests/${row.id}`).auth(ml, { type: 'bearer' }).expect(404);
    expect(await app.get(ForgetRequestService).recoverUnlogged(0)).toBe(1);
    const got = await http().get(`/v1/forget-requests/${row.id}`).auth(ml, { type: 'bearer' }).expect(200);
    expect(got.body).toMatchObject({ state: 'received', ledgerIndex: before, samples: [commitments.get('s-8')] });
    expect(await app.get(ForgetRequestService).recoverUnlogged(0)).toBe(0);
    // The retried request answers the recovered one.
    expect((await forget({ datasetId, externalIds: ['s-8'], reason: 'outage' }).expect(202)).body.id).toBe(row.id);
  });

  it('finds a request that reached the log before its answer was lost, and does not log it twice', async () => {
    const upload = http().post(`/v1/datasets/${datasetId}/samples`).auth(ml, { type: 'bearer' }).send([{ externalId: 'lost-1', features: [9, 9], label: 0 }]);
    const [{ commitment }] = (await upload.expect(200)).body.commitments;
    ledger.loseNextForgetAnswer = true;
    const before = await treeSize();
    expect((await forget({ datasetId, externalIds: ['lost-1'], reason: 'lost answer' })).status).toBe(500);
    expect(await treeSize()).toBe(before + 1); // durable, though never acknowledged
    const [row] = await dataSource.query(`SELECT id, ledger_index FROM forget_requests WHERE reason = 'lost answer'`);
    expect(row.ledger_index).toBeNull();
    expect(await app.get(ForgetRequestService).recoverUnlogged(0)).toBe(1);
    expect(await treeSize()).toBe(before + 1);
    const got = await http().get(`/v1/forget-requests/${row.id}`).auth(ml, { type: 'bearer' }).expect(200);
    expect(got.body).toMatchObject({ state: 'received', ledgerIndex: before, leafHash: (await ledger.getEntries(before, 1))[0].leafHash, samples: [commitment] });
  });

  it('keeps the state machine received -> unlearning -> completed | failed in the table', async () => {
    const { id } = (await forget({ datasetId, externalIds: ['s-9'], reason: 'states' }).expect(202)).body;
    const set = (state: string) => dataSource.query(`UPDATE forget_requests SET state = $2 WHERE id = $1`, [id, state]);
    await expect(set('completed')).rejects.toThrow(/cannot become completed/);
    await set('unlearning');
    await set('failed');
    await set('unlearning');
    await set('completed');
    await expect(set('received')).rejects.toThrow(/cannot become received/);
    await expect(dataSource.query(`UPDATE forget_requests SET ledger_index = 999 WHERE id = $1`, [id])).rejects.toThrow(/cannot change/);
    expect((await http().get(`/v1/forget-requests/${id}`).auth(ml, { type: 'bearer' }).expect(200)).body.state).toBe('completed');
  });
});
