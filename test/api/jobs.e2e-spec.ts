/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { loadIris } from '@lethe/unlearning';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { JobHarness, startJobHarness, startWorkerProcess, startAnotherWorker } from '../support/job-harness';
import { waitFor } from '../support/probe';


interface JobRow {
  state: string;
  worker_id: string | null;
  progress: number;
  attempts: number;
  error: string | null;
}

/**
 * Workers as separate processes (`npm run worker`) on one database: a job whose worker is stopped hands
 * it back, a job whose worker is killed is retried once its heartbeats stop, and another worker completes it.
 */
describe('jobs across worker processes', () => {
  let h: JobHarness;
  let late: JobWorker | undefined;
  const children: ChildProcess[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    // No worker in this process at first: the job must go to the worker processes.
    h = await startJobHarness('jobs_api', { worker: false, jobs: { expireSeconds: 600, retryLimit: 50 } });
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await late?.stop();
    await h?.close();
  });

  async function startWorker(env: Record<string, string> = {}): Promise<ChildProcess> {
    const child = await startWorkerProcess(h, env, (text) => logs.push(text));
    children.push(child);
    return child;
  }

  const jobRow = async (id: string): Promise<JobRow> =>
    (await h.dataSource.query(`SELECT state, worker_id, progress, attempts, error FROM jobs WHERE id = $1`, [id]))[0];
  const runningIn = (child: ChildProcess) => (j: JobRow) =>
    j.state === 'running' && (j.worker_id ?? '').includes(`:${child.pid}:`) && j.progress > 0;

  it('a job survives a worker that stops (handed back) and one that is killed (no heartbeats: retried before it expires), and is published once', async () => {
    const http = () => request(h.app.getHttpServer());
    const datasetId = (
      await http().post('/v1/datasets').auth(h.ml, { type: 'bearer' }).send({ name: 'iris', features: 4, classes: 3 }).expect(201)
    ).body.id;
    await http().post(`/v1/datasets/${datasetId}/samples`).auth(h.ml, { type: 'bearer' }).send(loadIris()).expect(200);
    const first = await startWorker({ JOB_STOP_TIMEOUT_SECONDS: '1' });
    // Long enough (a few seconds) to be caught running (training runs up to 256 steps per onnxruntime call: 2,000
    // epochs of a 64-unit layer took under a second quiet).
    const created = await http()
      .post('/v1/models')
      .auth(h.ml, { type: 'bearer' })
      .send({
        datasetId,
        method: 'full',
        architecture: { type: 'mlp', hidden: [256] },
        epochs: 10000,
        batchSize: 4,
        learningRate: 0.01,
        seed: 7,
      })
      .expect(202);
    const { modelId, jobId } = created.body;

    // 1. A graceful stop gives the job back to the queue (its worker cannot finish it in time).
    await waitFor(() => jobRow(jobId), runningIn(first), 60_000);
    const exited = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await jobRow(jobId)).toMatchObject({ state: 'queued', error: expect.stringContaining('worker stopped') });

    // 2. A worker that dies leaves the job running; its heartbeats stop (expiry is 10 minutes away).
    const second = await startWorker();
    await waitFor(() => jobRow(jobId), runningIn(second), 60_000);
    second.kill('SIGKILL');

    // 3. Another worker completes it.
    late = await startAnotherWorker(h, { expireSeconds: 600, retryLimit: 50 });
    const done = await waitFor(
      async () => (await http().get(`/v1/jobs/${jobId}`).auth(h.ml, { type: 'bearer' }).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      180_000,
    );
    expect(done).toMatchObject({ state: 'completed', progress: 1, result: { modelId, version: 1 } });
    expect((await jobRow(jobId)).attempts).toBeGreaterThanOrEqual(3);
    const published: unknown[] = await h.dataSource.query(
      `SELECT idx FROM ledger_entries WHERE type = 'MODEL_PUBLISHED' AND event LIKE $1`,
      [`%${modelId}%`],
    );
    expect(published).toHaveLength(1);
    const { body: model } = await http().get(`/v1/models/${modelId}`).auth(h.ml, { type: 'bearer' }).expect(200);
    expect(model).toMatchObject({ state: 'ready', latestVersion: 1 });
  }, 300_000);
});
