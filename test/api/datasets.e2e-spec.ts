import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault, computeCommitmentsRoot, openDatabase } from '@lethe/ledger';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { MAX_FEATURES } from '../../apps/api/src/datasets/dataset.dto';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { sharedTestKeyStore } from '../support/key-store';

/** An NDJSON line of a valid iris-shaped sample. */
function sampleLine(n: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ externalId: `s-${n}`, features: [n % 7, 1.5, -2, n / 3], label: n % 3, ...extra });
}

describe('datasets and sample uploads', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let app: INestApplication;
  let ml: string;
  let auditor: string;

  beforeAll(async () => {
    db = await createTestDatabase('datasets_api');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    const ledger = new Ledger(dataSource);
    app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger });
    await app.init();
    const keys = new ApiKeyService(dataSource);
    ml = (await keys.create('ml')).key;
    auditor = (await keys.create('auditor')).key;
  });

  afterAll(async () => {
    await app.close();
    await dataSource.destroy();
    await db.drop();
  });

  const http = () => request(app.getHttpServer());
  const treeSize = async (): Promise<number> => (await http().get('/v1/ledger/checkpoint')).body.treeSize;
  const entry = async (index: number) => JSON.parse((await http().get(`/v1/ledger/entries?start=${index}&limit=1`)).body[0].event);

  async function newDataset(features = 4, classes = 3): Promise<string> {
    const res = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'iris', features, classes }).expect(201);
    return res.body.id;
  }

  it('registers a dataset: 201 {id}, DATASET_REGISTERED in the log, and describes it without sample data', async () => {
    const before = await treeSize();
    const res = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'iris', features: 4, classes: 3 }).expect(201);
    expect(res.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), ledgerIndex: before, leafHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await entry(before)).toEqual({ type: 'DATASET_REGISTERED', version: 1, datasetId: res.body.id, name: 'iris', features: 4, classes: 3 });
    const got = await http().get(`/v1/datasets/${res.body.id}`).auth(auditor, { type: 'bearer' }).expect(200);
    expect(got.body).toMatchObject({ id: res.body.id, name: 'iris', features: 4, classes: 3, ledgerIndex: before, samples: { committed: 0, forgotten: 0 } });
    const list = await http().get('/v1/datasets?limit=1000').auth(ml, { type: 'bearer' }).expect(200);
    expect(list.body.map((d: { id: string }) => d.id)).toContain(res.body.id);
  });

  it.each([
    [{ features: 4, classes: 3 }, 'name'],
    [{ name: '', features: 4, classes: 3 }, 'name'],
    [{ name: 'x'.repeat(201), features: 4, classes: 3 }, 'name'],
    [{ name: 'a\u0000b', features: 4, classes: 3 }, 'name'],
    [{ name: 'x', features: 0, classes: 3 }, 'features'],
    [{ name: 'x', features: 2.5, classes: 3 }, 'features'],
    [{ name: 'x', features: '4', classes: 3 }, 'features'],
    [{ name: 'x', features: MAX_FEATURES + 1, classes: 3 }, `features must not be greater than ${MAX_FEATURES}`],
    [{ name: 'x', features: 4, classes: 1 }, 'classes'],
    [{ name: 'x', features: 4, classes: 3, extra: 1 }, 'extra'],
    [[1, 2], 'name'],
  ])('POST /v1/datasets %j is a 400 naming "%s", and nothing is logged', async (body, field) => {
    const before = await treeSize();
    const res = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send(body as object).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining(field) });
    expect(await treeSize()).toBe(before);
  });

  it('answers a body that is not JSON with a JSON 400, and a too large one with a 413', async () => {
    const res = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).set('Content-Type', 'application/json').send('{"name": ').expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: 'body is not valid JSON' });
    const big = await http().post('/v1/datasets').auth(ml, { type: 'bearer' }).send({ name: 'x'.repeat(2_000_000), features: 1, classes: 2 }).expect(413);
    expect(big.body.statusCode).toBe(413);
  });

  it('GET /v1/datasets/:id is a 404 for an unknown id and a 400 for a malformed one', async () => {
    await http().get('/v1/datasets/00000000-0000-4000-8000-000000000000').auth(ml, { type: 'bearer' }).expect(404);
    const res = await http().get('/v1/datasets/nope').auth(ml, { type: 'bearer' }).expect(400);
    expect(res.body.message).toContain('id');
  });

  it('commits a JSON array: per-line errors name the field, good lines get commitments in one SAMPLES_COMMITTED', async () => {
    const id = await newDataset();
    const before = await treeSize();
    const body = [
      { externalId: 'a', subjectId: 'alice', features: [1, 2, 3, 4], label: 0 },
      { externalId: 'b', features: [1, 2, 3], label: 0 },
      { externalId: 'c', features: [1, 2, 3, 4], label: 3 },
      { externalId: 'd', features: [1, 2, 'x', 4], label: 1 },
      { externalId: '', features: [1, 2, 3, 4], label: 1 },
      { externalId: 'e'.repeat(201), features: [1, 2, 3, 4], label: 1 },
      { externalId: 'a', features: [1, 2, 3, 4], label: 1 },
      { externalId: 'f', features: [1, 2, 3, 4], label: 1.5 },
      { externalId: 'g', features: [1, 2, 3, 4], label: 2, color: 'red' },
      'not an object',
      { externalId: 'h', features: [0, 0, 0, 0], label: 2 },
    ];
    const res = await http().post(`/v1/datasets/${id}/samples`).auth(ml, { type: 'bearer' }).send(body).expect(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejectedCount).toBe(9);
    expect(res.body.rejected).toEqual([
      { line: 2, externalId: 'b', error: 'features: has 3 values, want 4' },
      { line: 3, externalId: 'c', error: 'label: must be an integer in [0, 3)' },
      { line: 4, externalId: 'd', error: 'features[2]: must be a finite number' },
      { line: 5, error: 'externalId: must be a non-empty string' },
      { line: 6, error: 'externalId: longer than 200 characters' },
      { line: 7, externalId: 'a', error: 'externalId: repeats an earlier line of this upload' },
      { line: 8, externalId: 'f', error: 'label: must be an integer in [0, 3)' },
      { line: 9, externalId: 'g', error: 'color: unknown field' },
      { line: 10, error: 'a sample must be a JSON object' },
    ]);
    expect(res.body.commitments.map((c: { externalId: string }) => c.externalId)).toEqual(['a', 'h']);
    expect(res.body.ledgerIndices).toEqual([before]);
    expect(await entry(before)).toEqual({
      type: 'SAMPLES_COMMITTED',
      version: 1,
      datasetId: id,
      commitmentsRoot: computeCommitmentsRoot(res.body.commitments.map((c: { commitment: string }) => c.commitment)),
      count: 2,
    });
    // Sent again: every line is now a duplicate of a stored sample, and nothing is logged.
    const again = await http().post(`/v1/datasets/${id}/samples`).auth(ml, { type: 'bearer' }).send([body[0], body[10]]).expect(200);
    expect(again.body).toMatchObject({ accepted: 0, rejectedCount: 2, commitments: [], ledgerIndices: [] });
    expect(again.body.rejected[0]).toEqual({ line: 1, externalId: 'a', error: 'externalId: the dataset already has a sample with this externalId' });
    expect(await treeSize()).toBe(before + 2); // the SAMPLES_COMMITTED and the dataset's version (DATASET_VERSIONED)
    const got = await http().get(`/v1/datasets/${id}`).auth(ml, { type: 'bearer' }).expect(200);
    expect(got.body.samples).toEqual({ committed: 2, forgotten: 0 });
  });

  it.each([
    ['application/json', '{"externalId": "x"}', 400, 'JSON array'],
    ['application/json', '[]', 400, 'no samples'],
    ['application/json', 'externalId,features\nx,1', 400, 'not valid JSON'],
    ['application/x-ndjson', 'externalId,features,label\nx,1,2\n', 400, 'not NDJSON'],
    ['application/x-ndjson', '\n\n', 400, 'no samples'],
    ['text/csv', 'externalId,features\nx,1', 415, 'NDJSON'],
  ])('an upload as %s of %j is a %d (%s), and nothing is logged', async (type, body, status, message) => {
    const id = await newDataset();
    const before = await treeSize();
    const res = await http().post(`/v1/datasets/${id}/samples`).auth(ml, { type: 'bearer' }).set('Content-Type', type).send(body).expect(status);
    expect(res.body.message).toContain(message);
    expect(await treeSize()).toBe(before);
  });

  it('uploads to an unknown dataset are a 404', async () => {
    await http()
      .post('/v1/datasets/00000000-0000-4000-8000-000000000000/samples')
      .auth(ml, { type: 'bearer' })
      .send([{ externalId: 'a', features: [1, 2, 3, 4], label: 0 }])
      .expect(404);
  });

  it('streams 20,000 NDJSON lines with bad ones: chunks of 5,000 good samples, every bad line reported', async () => {
    const id = await newDataset();
    const before = await treeSize();
    const lines: string[] = [];
    const bad = new Map<number, string>();
    for (let n = 1; n <= 20_000; n++) {
      if (n % 1000 === 0) {
        lines.push(sampleLine(n, { label: 7 }));
        bad.set(n, 'label: must be an integer in [0, 3)');
      } else if (n % 1000 === 1 && n > 1) {
        lines.push('{"externalId": "broken",');
        bad.set(n, 'not valid JSON');
      } else if (n === 12_345) {
        lines.push(sampleLine(1)); // the externalId of line 1, committed in an earlier chunk
        bad.set(n, 'externalId: the dataset already has a sample with this externalId');
      } else {
        lines.push(sampleLine(n));
      }
    }
    const res = await http()
      .post(`/v1/datasets/${id}/samples`)
      .auth(ml, { type: 'bearer' })
      .set('Content-Type', 'application/x-ndjson')
      .send(`${lines.join('\r\n')}\n`)
      .expect(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.rejectedCount).toBe(bad.size);
    expect(res.body.accepted).toBe(20_000 - bad.size);
    expect(res.body.rejected.map((r: { line: number; error: string }) => [r.line, r.error])).toEqual([...bad.entries()]);
    expect(res.body.commitments).toHaveLength(res.body.accepted);
    expect(new Set(res.body.commitments.map((c: { commitment: string }) => c.commitment)).size).toBe(res.body.accepted);
    expect(res.body.ledgerIndices).toHaveLength(4);
    expect(res.body.ledgerIndices).toEqual([before, before + 1, before + 2, before + 3]);
    // Each SAMPLES_COMMITTED root is the root of that chunk's commitments, in upload order.
    let at = 0;
    for (const index of res.body.ledgerIndices) {
      const event = await entry(index);
      const chunk = res.body.commitments.slice(at, at + event.count).map((c: { commitment: string }) => c.commitment);
      expect(event).toMatchObject({ type: 'SAMPLES_COMMITTED', datasetId: id, commitmentsRoot: computeCommitmentsRoot(chunk) });
      at += event.count;
    }
    expect(at).toBe(res.body.accepted);
    const got = await http().get(`/v1/datasets/${id}`).auth(ml, { type: 'bearer' }).expect(200);
    expect(got.body.samples.committed).toBe(res.body.accepted);
  });

  it('reports an overlong NDJSON line and goes on with the next', async () => {
    const id = await newDataset();
    const huge = JSON.stringify({ externalId: 'huge', features: new Array(1_000_000).fill(1.25), label: 0 });
    const res = await http()
      .post(`/v1/datasets/${id}/samples`)
      .auth(ml, { type: 'bearer' })
      .set('Content-Type', 'application/x-ndjson')
      .send([sampleLine(1), huge, sampleLine(2)].join('\n'))
      .expect(200);
    expect(res.body).toMatchObject({ accepted: 2, rejectedCount: 1, rejected: [{ line: 2, error: expect.stringContaining('longer than') }] });
  });

  it('replays an NDJSON upload sent again with the same Idempotency-Key, and refuses another body with it', async () => {
    const id = await newDataset();
    const body = `${Array.from({ length: 5002 }, (_, n) => sampleLine(n)).join('\n')}\nnot json\n`;
    const send = (key: string, text: string) =>
      http().post(`/v1/datasets/${id}/samples`).auth(ml, { type: 'bearer' }).set('Idempotency-Key', key).set('Content-Type', 'application/x-ndjson').send(text);
    const first = await send('upload-1', body).expect(200);
    expect(first.body).toMatchObject({ accepted: 5002, rejectedCount: 1 });
    const size = await treeSize();
    const again = await send('upload-1', body).expect(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await treeSize()).toBe(size);
    const other = await send('upload-1', `${sampleLine(9999)}\n`).expect(409);
    expect(other.body.message).toContain('different body');
    const asJson = await http()
      .post(`/v1/datasets/${id}/samples`)
      .auth(ml, { type: 'bearer' })
      .set('Idempotency-Key', 'upload-1')
      .send([JSON.parse(sampleLine(1))])
      .expect(409);
    expect(asJson.body.message).toContain('different body');
    // A failed upload (not NDJSON at all) does not keep the key.
    await send('upload-2', 'a,b,c\n').expect(400);
    expect((await send('upload-2', `${sampleLine(7777)}\n`).expect(200)).body.accepted).toBe(1);
    expect(await treeSize()).toBe(size + 2); // its SAMPLES_COMMITTED and the dataset's version
  });

  it('never writes raw features or salts to the log', async () => {
    const id = await newDataset();
    await http()
      .post(`/v1/datasets/${id}/samples`)
      .auth(ml, { type: 'bearer' })
      .send([{ externalId: 'secret-id', subjectId: 'secret-subject', features: [123.456, 2, 3, 4], label: 0 }])
      .expect(200);
    const [opened] = await new SampleVault(dataSource, new Ledger(dataSource), await sharedTestKeyStore()).readSamples({ datasetId: id });
    const salt = opened.salt.toString('hex');
    const log: { event: string }[] = await dataSource.query(`SELECT event FROM ledger_entries`);
    const text = log.map((l) => l.event).join('\n');
    // Positive control: the same search finds what the log does hold of this upload (its dataset's id).
    expect(text).toContain(id);
    for (const forbidden of ['secret-id', 'secret-subject', '123.456', salt]) expect(text).not.toContain(forbidden);
  });
});
