/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { Ledger } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { ModelStore } from '../../apps/api/src/models/model.store';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { createAndTrain, forgetAndWait, uploadDataset } from '../support/api-data';

/**
 * The look-up of a model's next version logged but not recorded (what a pass that stopped between logging and
 * recording leaves) is crash recovery: a worker makes it on its first pass over a dataset and on a retried job,
 * not on every pass. The retry still finds and finishes the version a failed attempt logged.
 */
describe('the crash-recovery look-ups of an unlearning pass', () => {
  let h: JobHarness;
  let datasetId: string;
  let modelId: string;
  const iris = loadIris();
  const lookups = jest.spyOn(Ledger.prototype, 'findEntries');
  /** How many times a pass looked for a logged but unrecorded version of the model. */
  const looked = () =>
    lookups.mock.calls.filter(([q]) => q.type === 'UNLEARN_COMPLETED' && (q.fields as { modelId?: string } | undefined)?.modelId === modelId).length;
  /** How many times the pass's ledger sink looked for the version it appends in the log (ModelLedgerSink.mayBeLogged). */
  const sinkLooked = () =>
    lookups.mock.calls.filter(([q]) => Array.isArray(q.type) && q.type.includes('MODEL_PUBLISHED') && (q.fields as { modelId?: string } | undefined)?.modelId === modelId).length;

  beforeAll(async () => {
    h = await startJobHarness('recovery_lookups', { jobs: { retryLimit: 3 } });
    ({ datasetId } = await uploadDataset(h, iris));
    modelId = await createAndTrain(h, { datasetId, method: 'sisa', shards: 2, slices: 2, architecture: { type: 'logreg' }, epochs: 5, batchSize: 8, learningRate: 0.1, seed: 'lookups' });
  }, 180_000);

  afterAll(async () => {
    lookups.mockRestore();
    await h?.close();
  });

  it('are made by the first pass and a retried one, not by a pass after a completed one', async () => {
    const trained = sinkLooked(); // the training's sink looked too
    await forgetAndWait(h, datasetId, iris[3].externalId);
    expect(looked()).toBe(1); // the worker's first pass over the dataset
    expect(sinkLooked() - trained).toBe(1);
    await forgetAndWait(h, datasetId, iris[30].externalId);
    expect(looked()).toBe(1); // the last pass completed: nothing to recover
    expect(sinkLooked() - trained).toBe(1);

    // An attempt that logs its version and fails before recording it: the retry looks and finishes that version.
    const save = jest.spyOn(ModelStore.prototype, 'save').mockImplementationOnce(async () => {
      throw new Error('the worker died after logging the version');
    });
    try {
      await forgetAndWait(h, datasetId, iris[60].externalId);
    } finally {
      save.mockRestore();
    }
    expect(looked()).toBe(2);
    expect(sinkLooked() - trained).toBe(2); // the retry's, which found the version logged (the failed attempt followed a completed pass: it did not look)
    const logged: { version: number }[] = await h.dataSource.query(
      `SELECT (event::jsonb->>'modelVersion')::int AS version FROM ledger_entries WHERE type = 'UNLEARN_COMPLETED' AND event::jsonb->>'modelId' = $1 ORDER BY idx`,
      [modelId],
    );
    expect(logged.map((e) => e.version)).toEqual([2, 3, 4]); // each version logged once
    const [{ latest }] = await h.dataSource.query(`SELECT max(version)::int AS latest FROM model_versions WHERE model_id = $1`, [modelId]);
    expect(latest).toBe(4);

    await forgetAndWait(h, datasetId, iris[90].externalId);
    expect(looked()).toBe(2);
    expect(sinkLooked() - trained).toBe(2);
  }, 240_000);
});
