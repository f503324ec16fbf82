/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { detectRuntimeEnvelope } from '@lethe/unlearning';
import { DroppingForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { ModelLedgerSink } from '../../apps/api/src/models/model-ledger.sink';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { JobHarness, startJobHarness, startAnotherWorker } from '../support/job-harness';
import { waitFor } from '../support/probe';

/** A tiny two-class dataset: 8 samples, two per subject. */
function tinySamples() {
  return Array.from({ length: 8 }, (_, i) => ({ externalId: `t-${i}`, subjectId: `subject-${i >> 1}`, features: [i % 2, (i * 7) % 5], label: i % 2 }));
}

describe('forget requests through to unlearning: durability and failure', () => {
  let h: JobHarness;
  let worker: JobWorker | undefined;

  beforeAll(async () => {
    // The intake's notifications are lost (a queue that drops them): only the rows in `received` remain.
    h = await startJobHarness('models_forget', { worker: false, forgetRequestQueue: new DroppingForgetRequestQueue() });
  });

  afterAll(async () => {
    await worker?.stop();
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const startWorker = async (): Promise<JobWorker> => {
    if (!worker) {
      worker = await startAnotherWorker(h);
    }
    return worker;
  };
  const getRequest = async (id: string) => (await asMl(http().get(`/v1/forget-requests/${id}`)).expect(200)).body;

  it('a worker that starts finds requests left in `received`; a model that cannot forget fails alone, and the request still completes', async () => {
    const datasetId = (await asMl(http().post('/v1/datasets')).send({ name: 'tiny', features: 2, classes: 2 }).expect(201)).body.id;
    const upload = await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(tinySamples()).expect(200);
    expect(upload.body.commitments).toHaveLength(8);
    // S x R = 8: every sample is needed, so forgetting any makes the model impossible.
    const created = await asMl(http().post('/v1/models'))
      .send({ datasetId, method: 'sisa', shards: 4, slices: 2, architecture: { type: 'logreg' }, epochs: 1, batchSize: 2, learningRate: 0.1, seed: 's' })
      .expect(202);
    const early = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'subject-3', reason: 'erasure' }).expect(202);
    expect((await getRequest(early.body.id)).state).toBe('received');

    await startWorker();
    // The model trains without subject-3 (already asked to be forgotten), and the request completes: it never learned them.
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    expect(job.state).toBe('failed');
    expect(job.error).toContain('cannot fill 4 shards x 2 slices');
    const first = await waitFor(() => getRequest(early.body.id), (r) => r.state === 'completed' || r.state === 'failed');
    expect(first).toMatchObject({ state: 'completed', modelVersions: [], evidence: null });
    const shredded: { n: number }[] = await h.dataSource.query(`SELECT count(*)::int AS n FROM sample_commitments WHERE dataset_id = $1 AND forgotten_at IS NOT NULL`, [datasetId]);
    expect(shredded[0].n).toBe(2);

    // 6 samples left: a model with S x R = 6, then forgetting 2 more is impossible for it.
    const second = await asMl(http().post('/v1/models'))
      .send({ datasetId, method: 'sisa', shards: 3, slices: 2, architecture: { type: 'logreg' }, epochs: 1, batchSize: 2, learningRate: 0.1, seed: 's' })
      .expect(202);
    await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${second.body.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    ).then((j) => expect(j.state).toBe('completed'));
    const late = await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'subject-0', reason: 'erasure' }).expect(202);
    await worker!.resendWaiting(); // what a worker's start-up does; the intake's own notification was lost
    // The model fails (and serves nothing: test/api/retirement.e2e-spec.ts); the erasure does not wait on it.
    const done = await waitFor(() => getRequest(late.body.id), (r) => r.state === 'completed' || r.state === 'failed');
    expect(done).toMatchObject({ state: 'completed', modelVersions: [] });
    const shreddedNow: { n: number }[] = await h.dataSource.query(`SELECT count(*)::int AS n FROM sample_commitments WHERE dataset_id = $1 AND forgotten_at IS NOT NULL`, [datasetId]);
    expect(shreddedNow[0].n).toBe(4);
    const { body: model } = await asMl(http().get(`/v1/models/${second.body.modelId}`)).expect(200);
    expect(model).toMatchObject({ state: 'failed', versions: [expect.objectContaining({ version: 1, state: 'retired', retiredBy: [late.body.id] })] });
    expect(model.error).toContain('4 samples cannot fill 3 shards x 2 slices');
  });

  it('serves requests that wait together in one pass: one new version, one UNLEARN_COMPLETED naming them all', async () => {
    await startWorker();
    const datasetId = (await asMl(http().post('/v1/datasets')).send({ name: 'tiny-2', features: 2, classes: 2 }).expect(201)).body.id;
    await asMl(http().post(`/v1/datasets/${datasetId}/samples`)).send(tinySamples()).expect(200);
    const created = await asMl(http().post('/v1/models'))
      .send({ datasetId, method: 'full', architecture: { type: 'logreg' }, epochs: 2, batchSize: 2, learningRate: 0.1, seed: 'batch' })
      .expect(202);
    await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    ).then((j) => expect(j.state).toBe('completed'));
    const ids: string[] = [];
    for (const subjectId of ['subject-0', 'subject-1'])
      ids.push((await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId, reason: 'erasure' }).expect(202)).body.id);
    await worker!.resendWaiting();
    const done = await Promise.all(ids.map((id) => waitFor(() => getRequest(id), (r) => r.state === 'completed' || r.state === 'failed')));
    expect(done.map((r) => r.state)).toEqual(['completed', 'completed']);
    expect(done[0].modelVersions).toEqual(done[1].modelVersions);
    expect(done[0].modelVersions).toEqual([expect.objectContaining({ modelId: created.body.modelId, version: 2 })]);
    expect(await h.ledger.getEvent(done[0].modelVersions[0].unlearnLedgerIndex)).toMatchObject({ type: 'UNLEARN_COMPLETED', requestIds: ids });
    expect(done[0].evidence[created.body.modelId]).toMatchObject({ forgottenCount: 4, retainCount: 4 });
  });

  it('the ledger sink does not publish a version twice (a job retried after its worker appended), and refuses other bytes', async () => {
    const published = { type: 'MODEL_PUBLISHED' as const, version: 1 as const, modelId: 'sink-model', modelVersion: 1, onnxSha256: 'a'.repeat(64), manifestHash: 'b'.repeat(64), metrics: {}, runtime: detectRuntimeEnvelope() };
    const first = new ModelLedgerSink(h.ledger);
    await first.append([published]);
    const size = (await h.ledger.getCheckpoint()).treeSize;
    const retried = new ModelLedgerSink(h.ledger);
    await retried.append([published]);
    expect((await h.ledger.getCheckpoint()).treeSize).toBe(size);
    expect(retried.indexOf('MODEL_PUBLISHED', 'sink-model', 1)).toBe(first.indexOf('MODEL_PUBLISHED', 'sink-model', 1));
    await expect(new ModelLedgerSink(h.ledger).append([{ ...published, onnxSha256: 'c'.repeat(64) }])).rejects.toThrow('was published as');
    expect((await h.ledger.getCheckpoint()).treeSize).toBe(size);
  });
});
