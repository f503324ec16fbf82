/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { TRAIN_JOB, UNLEARN_JOB } from '../../apps/api/src/jobs/job.entity';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { uploadDataset } from '../support/api-data';
import { JobHarness, startAnotherWorker, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';

/**
 * A worker killed between pg-boss delivering a job and taking it (claiming its row: no heartbeat is ever
 * written) left the job active in pg-boss until it expired (JOB_EXPIRE_SECONDS, an hour by default), while
 * sending it again at the next start did nothing (same id): an acknowledged forget request stayed `received`
 * (a crash trial of the reliability suite, seed 2124851609, waited 300 s for it). The next worker retries such a
 * job once it has been delivered for JOB_LOST_AFTER_SECONDS without being taken.
 */
describe('jobs delivered to a worker that died before taking them', () => {
  let h: JobHarness;
  let worker: JobWorker | undefined;

  beforeAll(async () => {
    // No worker at first: the test plays the worker that dies. Expiry is 10 minutes away, beyond every wait here.
    h = await startJobHarness('jobs_delivered_dead', { worker: false, jobs: { expireSeconds: 600, lostAfterSeconds: 4 } });
  });

  afterAll(async () => {
    await worker?.stop();
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
  const job = async (id: string) => (await asMl(http().get(`/v1/jobs/${id}`)).expect(200)).body;

  it('are retried by the next worker, and complete: a training and an unlearning pass', async () => {
    const samples = loadIris();
    const { datasetId } = await uploadDataset(h, samples);
    const training = (
      await asMl(http().post('/v1/models'))
        .send({ datasetId, method: 'full', architecture: { type: 'logreg' }, epochs: 1, batchSize: 16, learningRate: 0.1, seed: 'dead' })
        .expect(202)
    ).body;
    const forget = (await asMl(http().post('/v1/forget-requests')).send({ datasetId, externalIds: [samples[0].externalId], reason: 'erasure' }).expect(202)).body;

    // The worker that dies: pg-boss hands it both messages (they become active), and it never takes them.
    const delivered = [...(await h.boss.fetch(TRAIN_JOB)), ...(await h.boss.fetch(UNLEARN_JOB))].map((m) => m.id).sort();
    expect(delivered).toEqual([training.jobId, forget.jobId].sort());
    for (const id of delivered) expect((await h.dataSource.query(`SELECT state, worker_id FROM jobs WHERE id = $1`, [id]))[0]).toEqual({ state: 'queued', worker_id: null });

    worker = await startAnotherWorker(h, { expireSeconds: 600, lostAfterSeconds: 4 });
    for (const id of [training.jobId, forget.jobId]) {
      const done = await waitFor(() => job(id), (j) => j.state === 'completed' || j.state === 'failed', 90_000);
      expect(done).toMatchObject({ state: 'completed' });
    }
    const served = (await asMl(http().get(`/v1/forget-requests/${forget.id}`)).expect(200)).body;
    expect(served.state).toBe('completed');
    expect((await asMl(http().get(`/v1/models/${training.modelId}`)).expect(200)).body).toMatchObject({ state: 'ready', latestVersion: 1 });
  }, 240_000);
});
