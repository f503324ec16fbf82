/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JobHarness, startAnotherWorker, startJobHarness } from '../support/job-harness';
import { createAndTrain, forgetAndWait, uploadDataset } from '../support/api-data';
import { JobWorker } from '../../apps/api/src/worker/job.worker';

/**
 * The members of the batches a version made by forgetting retrained (batch_commitments, which receipts prove a
 * sample's learning with) are written after the version is served. A crash between the two leaves the version's
 * row saying they are owed (batches_pending) and none written: made here by deleting them and setting the row
 * back. Then a receipt still proves the learning (it writes them), a pass writes them before it forgets, and a
 * starting worker writes them; each time exactly the rows the pass wrote.
 */
describe('the batch members of a version made by forgetting', () => {
  let h: JobHarness;
  let another: JobWorker | undefined;
  let datasetId: string;
  let modelId: string;
  const iris = loadIris();
  const http = () => request(h.app.getHttpServer());

  /** The version's BATCH_LEARNED entries, as batchKey -> index. */
  const batchesOf = async (version: number): Promise<{ [batch: string]: number }> => {
    const rows: { idx: string; event: string }[] = await h.dataSource.query(
      `SELECT idx, event FROM ledger_entries WHERE type = 'BATCH_LEARNED' AND event::jsonb->>'modelId' = $1 AND (event::jsonb->>'modelVersion')::int = $2`,
      [modelId, version],
    );
    return Object.fromEntries(rows.map((r) => [`${JSON.parse(r.event).shard}/${JSON.parse(r.event).slice}`, Number(r.idx)]));
  };
  /** The rows of batch_commitments of the given entries, in order. */
  const membersOf = async (batches: { [batch: string]: number }): Promise<string[]> =>
    (
      await h.dataSource.query(`SELECT ledger_index, position, commitment FROM batch_commitments WHERE ledger_index = ANY($1::bigint[]) ORDER BY ledger_index, position`, [
        Object.values(batches).map(String),
      ])
    ).map((r: { ledger_index: string; position: number; commitment: string }) => `${r.ledger_index}/${r.position}/${r.commitment}`);
  const pendingOf = async (version: number): Promise<unknown> =>
    (await h.dataSource.query(`SELECT batches_pending FROM model_versions WHERE model_id = $1 AND version = $2`, [modelId, version]))[0].batches_pending;
  /** What a crash right after serving the version leaves: its row says its batch members are owed, none are written. */
  const crashAfterServing = async (version: number, batches: { [batch: string]: number }): Promise<void> => {
    await h.dataSource.query(`DELETE FROM batch_commitments WHERE ledger_index = ANY($1::bigint[])`, [Object.values(batches).map(String)]);
    await h.dataSource.query(`UPDATE model_versions SET batches_pending = $3 WHERE model_id = $1 AND version = $2`, [modelId, version, JSON.stringify(batches)]);
    expect(await membersOf(batches)).toEqual([]);
  };

  const forget = (externalId: string) => forgetAndWait(h, datasetId, externalId);

  beforeAll(async () => {
    h = await startJobHarness('batch_members');
    ({ datasetId } = await uploadDataset(h, iris));
    modelId = await createAndTrain(h, {
      datasetId,
      method: 'sisa',
      shards: 2,
      slices: 2,
      architecture: { type: 'logreg' },
      epochs: 5,
      batchSize: 8,
      learningRate: 0.1,
      seed: 'members',
    });
  }, 180_000);

  afterAll(async () => {
    await another?.stop();
    await h?.close();
  });

  it('are written after serving, and after a crash by a receipt, by the next pass and by a starting worker', async () => {
    await forget(iris[5].externalId);
    const v2 = await batchesOf(2);
    expect(Object.keys(v2).length).toBeGreaterThan(0);
    const written = await membersOf(v2);
    expect(written.length).toBeGreaterThan(0);
    expect(await pendingOf(2)).toBeNull();
    // A sample of a batch version 2 retrained, which it learned, and the entry that proves it.
    const [index, , learned] = written[written.length - 1].split('/');
    const learnedIn = async () =>
      ((await http().get(`/v1/receipts/${learned}`).expect(200)).body.learnedIn as { ledgerIndex: number }[]).map((e) => e.ledgerIndex);
    expect(await learnedIn()).toContain(Number(index));

    // The receipt after a crash: it waits for the pass that owes them, none comes, it writes them itself.
    await crashAfterServing(2, v2);
    expect(await learnedIn()).toContain(Number(index));
    expect(await membersOf(v2)).toEqual(written);
    expect(await pendingOf(2)).toBeNull();

    // The next pass writes them before it forgets (and the version it makes gets its own).
    await crashAfterServing(2, v2);
    await forget(iris[40].externalId);
    expect(await membersOf(v2)).toEqual(written);
    expect(await pendingOf(2)).toBeNull();
    const v3 = await batchesOf(3);
    const written3 = await membersOf(v3);
    expect(written3.length).toBeGreaterThan(0);
    expect(await pendingOf(3)).toBeNull();

    // A worker that starts writes them (the dataset is free).
    await crashAfterServing(3, v3);
    another = await startAnotherWorker(h);
    expect(await membersOf(v3)).toEqual(written3);
    expect(await pendingOf(3)).toBeNull();
  }, 240_000);
});
