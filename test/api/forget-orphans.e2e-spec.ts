/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
// Orphans through the service: rows an upload stored but never logged (it stopped between storing and
// appending) are found by forget requests, which erase them (keys destroyed, rows deleted), and by the sweep.
import request from 'supertest';
import { LedgerEvent } from '@lethe/events';
import { AppendedEntry, Ledger, SampleVault } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { ErasureSweep } from '../../apps/api/src/sweeps/erasure-sweep.service';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';

/** A ledger whose appends fail: the upload stops between storing its rows and logging them. */
class StoppingLedger extends Ledger {
  override async appendOne(event: LedgerEvent): Promise<AppendedEntry> {
    void event;
    throw new Error('the process stopped before the append');
  }
}

describe('orphaned samples', () => {
  let h: JobHarness;
  let datasetId: string;

  beforeAll(async () => {
    h = await startJobHarness('forget_orphans');
    datasetId = (await asMl(http().post('/v1/datasets')).send({ name: 'iris', features: 4, classes: 3 }).expect(201)).body.id;
    await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(loadIris()).expect(200);
  });

  afterAll(async () => {
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const keysOf = async (commitments: string[]): Promise<string[]> =>
    (
      await h.dataSource.query(
        `SELECT p.subject_key_id AS k FROM sample_payloads p JOIN sample_commitments c ON c.id = p.sample_id WHERE c.commitment = ANY($1::text[])`,
        [commitments],
      )
    ).map((r: { k: string }) => r.k);
  const orphan = async (samples: { externalId: string; subjectId?: string; features: number[]; label: number }[]): Promise<string[]> => {
    const stopped = new SampleVault(h.dataSource, new StoppingLedger(h.dataSource), h.keyStore);
    await expect(stopped.commit(datasetId, samples)).rejects.toThrow('stopped before the append');
    const rows: { commitment: string }[] = await h.dataSource.query(
      `SELECT commitment FROM sample_commitments WHERE dataset_id = $1 AND ledger_index IS NULL ORDER BY id DESC LIMIT $2`,
      [datasetId, samples.length],
    );
    return rows.map((r) => r.commitment);
  };

  it('a forget request finds an orphan (never committed, not a 404) and erases it with its key', async () => {
    const commitments = await orphan([{ externalId: 'orphan-a', subjectId: 'orphan-subject', features: [1, 2, 3, 4], label: 0 }]);
    const [keyId] = await keysOf(commitments);
    expect(await h.keyStore.hasKey(keyId)).toBe(true);
    // Not a committed sample: no receipt, not trained on.
    await http().get(`/v1/receipts/${commitments[0]}`).expect(404);
    const created = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'orphan-subject', reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${created.body.id}`)).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done).toMatchObject({ state: 'completed', samples: commitments });
    expect(await h.keyStore.hasKey(keyId)).toBe(false);
    expect((await h.dataSource.query(`SELECT count(*)::int AS n FROM sample_commitments WHERE commitment = $1`, [commitments[0]]))[0].n).toBe(0);
    await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: ['orphan-a'], reason: 'again' }).expect(404);
  });

  it('the sweep erases orphans older than its bound, and leaves younger ones and committed samples alone', async () => {
    const commitments = await orphan([
      { externalId: 'orphan-b', features: [1, 2, 3, 4], label: 1 },
      { externalId: 'orphan-c', features: [4, 3, 2, 1], label: 2 },
    ]);
    const keys = await keysOf(commitments);
    const sweep = h.app.get(ErasureSweep);
    expect(await sweep.sweep()).toMatchObject({ orphansErased: 0, orphansAdopted: 0 }); // younger than 10 minutes
    await h.dataSource.query(`UPDATE sample_commitments SET created_at = now() - interval '11 minutes' WHERE commitment = ANY($1::text[])`, [commitments]);
    expect(await sweep.sweep()).toMatchObject({ orphansErased: 2, orphansAdopted: 0 });
    for (const keyId of keys) expect(await h.keyStore.hasKey(keyId)).toBe(false);
    expect((await h.dataSource.query(`SELECT count(*)::int AS n FROM sample_commitments WHERE commitment = ANY($1::text[])`, [commitments]))[0].n).toBe(0);
    const { body } = await asMl(http().get(`/v1/datasets/${datasetId}`)).expect(200);
    expect(body.samples).toEqual({ committed: 150, forgotten: 0 });
  });
});
