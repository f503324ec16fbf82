/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { JobHarness, startJobHarness, startWorkerProcess, startAnotherWorker, SLOW_FULL_RETRAIN } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { uploadDataset } from '../support/api-data';


/**
 * A worker process that dies in the middle of an unlearning pass: its requests, already `unlearning`, are
 * not lost; the pass is retried by another worker once its heartbeats stop, and logs its UNLEARN_COMPLETED once.
 */
describe('an unlearning pass whose worker dies', () => {
  let h: JobHarness;
  let late: JobWorker | undefined;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    // No worker in this process at first: the pass must run in the worker process.
    h = await startJobHarness('unlearning_crash', { worker: false, jobs: { expireSeconds: 600, retryLimit: 50 } });
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await late?.stop();
    await h?.close();
  });

  it('is retried by another worker and completes every request it had taken', async () => {
    const http = () => request(h.app.getHttpServer());
    const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });
    const samples = loadIris();
    const { datasetId } = await uploadDataset(h, samples);
    child = await startWorkerProcess(h);
    const created = await asMl(http().post('/v1/models'))
      .send({ datasetId, ...SLOW_FULL_RETRAIN, seed: 'crash' })
      .expect(202);
    const { modelId, jobId: trainJob } = created.body;
    const trained = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${trainJob}`)).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      180_000,
    );
    expect(trained.state).toBe('completed');

    const filed = await Promise.all(
      samples.slice(0, 3).map(
        async (s) =>
          (
            await asMl(http().post('/v1/forget-requests'))
              .send({ datasetId, externalIds: [s.externalId], reason: 'erasure' })
              .expect(202)
          ).body,
      ),
    );
    // A sent job wakes the worker at once (NOTIFY), so the three may be served by one pass or by two (one running,
    // one waiting); the worker process dies in the middle of the first it runs.
    const pid = child.pid!;
    const passes = (): Promise<{ id: string; state: string; worker_id: string | null; progress: number }[]> =>
      h.dataSource.query(`SELECT id, state, worker_id, progress FROM jobs WHERE type = 'lethe.unlearn' AND payload->>'datasetId' = $1`, [
        datasetId,
      ]);
    const runningInChild = (j: { state: string; worker_id: string | null; progress: number }) =>
      j.state === 'running' && (j.worker_id ?? '').includes(`:${pid}:`) && j.progress > 0;
    const jobId = (await waitFor(passes, (rows) => rows.some(runningInChild), 120_000)).find(runningInChild)!.id;
    child.kill('SIGKILL');
    const taken = [];
    for (const r of filed) {
      const now = (await asMl(http().get(`/v1/forget-requests/${r.id}`)).expect(200)).body;
      if (now.jobId === jobId) taken.push(now);
    }
    // The requests the dead pass had taken are not lost: still `unlearning`, with its job.
    expect(taken.length).toBeGreaterThan(0);
    for (const r of taken) expect(r.state).toBe('unlearning');

    late = await startAnotherWorker(h, { expireSeconds: 600, retryLimit: 50 });
    // Every request completes: by the dead pass's retry, or by the pass the new worker queued at start-up
    // for the dataset's waiting requests (whichever holds the dataset first takes them all).
    const completed = await Promise.all(
      filed.map((r) =>
        waitFor(
          async () => (await asMl(http().get(`/v1/forget-requests/${r.id}`)).expect(200)).body,
          (got) => got.state === 'completed' || got.state === 'failed',
          180_000,
        ),
      ),
    );
    expect(completed.map((r) => r.state)).toEqual(['completed', 'completed', 'completed']);
    // The dead pass is retried (a second attempt) and ends too.
    const dead = await waitFor(
      async () => (await h.dataSource.query(`SELECT state, attempts FROM jobs WHERE id = $1`, [jobId]))[0],
      (j) => j.state === 'completed' || j.state === 'failed',
      120_000,
    );
    expect(dead.state).toBe('completed');
    expect(dead.attempts).toBeGreaterThanOrEqual(2);
    // The model's latest version forgot all three, and each of its versions was logged once.
    const { body: model } = await asMl(http().get(`/v1/models/${modelId}`)).expect(200);
    const latest = model.versions.find((v: { version: number }) => v.version === model.latestVersion);
    expect([...latest.reflectsForgetRequests].sort()).toEqual(filed.map((r) => r.id).sort());
    const unlearned: { event: string }[] = await h.dataSource.query(
      `SELECT event FROM ledger_entries WHERE type = 'UNLEARN_COMPLETED' AND event LIKE $1`,
      [`%${modelId}%`],
    );
    const versions = unlearned.map((e) => JSON.parse(e.event).modelVersion as number).sort();
    expect(versions).toEqual(Array.from({ length: model.latestVersion - 1 }, (_, i) => i + 2));
  }, 400_000);
});
