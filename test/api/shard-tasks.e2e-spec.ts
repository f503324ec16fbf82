/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { Sample, TrainingConfigInput, loadIris } from '@lethe/unlearning';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { uploadDataset } from '../support/api-data';
import { fromScratchSha256 } from '../support/from-scratch';
import { JobHarness, startAnotherWorker, startJobHarness, startWorkerProcess } from '../support/job-harness';
import { waitFor } from '../support/probe';

interface TaskRow {
  shard: number;
  state: string;
  worker_id: string | null;
  attempts: number;
  progress: number;
}

/**
 * A SISA training fans out: one shard task per shard, taken by two workers (this process's and an
 * `npm run worker` process) that share the database and its artifact store. The worker process is killed
 * while it trains a shard: only that shard is trained again (by the other worker), the others are not, and
 * the published bytes equal a from-scratch training in one process. GET /v1/jobs/:id says which worker
 * trained which shard and how long it took.
 */
describe('shard tasks across workers', () => {
  let h: JobHarness;
  let inProcess: JobWorker | undefined;
  let child: ChildProcess | undefined;
  const iris = loadIris();
  const logs: string[] = [];
  let datasetId: string | undefined;
  const datasetIdOf = () => datasetId!;
  let trained: { modelId: string; commitments: Map<string, string> } | undefined;
  const config: TrainingConfigInput = {
    method: 'sisa',
    model: 'mlp',
    hiddenLayers: [32],
    numFeatures: 4,
    numClasses: 3,
    shards: 4,
    slices: 2,
    epochs: 1200,
    batchSize: 4,
    learningRate: 0.05,
    seed: 'fan-out',
  };

  beforeAll(async () => {
    h = await startJobHarness('shard_tasks', { worker: false, jobs: { expireSeconds: 600, retryLimit: 50 } });
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await inProcess?.stop();
    await h?.close();
  });

  const tasksOf = async (jobId: string): Promise<TaskRow[]> =>
    h.dataSource.query(`SELECT shard, state, worker_id, attempts, progress FROM job_tasks WHERE job_id = $1 AND superseded_at IS NULL ORDER BY shard`, [jobId]);

  it('trains each shard once on some worker, only the dead worker`s shard again, and publishes the single-process bytes', async () => {
    const http = () => request(h.app.getHttpServer());
    const uploaded = await uploadDataset(h, iris);
    datasetId = uploaded.datasetId;
    const commitments = uploaded.commitments;
    child = await startWorkerProcess(h, { WORKER_NAME: 'doomed' }, (text) => logs.push(text));
    inProcess = await startAnotherWorker(h, { expireSeconds: 600, retryLimit: 50 });
    // Long enough shards (seconds each) for the worker process to be caught training one.
    const created = await http()
      .post('/v1/models')
      .auth(h.ml, { type: 'bearer' })
      .send({ datasetId, method: 'sisa', shards: 4, slices: 2, architecture: { type: 'mlp', hidden: [32] }, epochs: 1200, batchSize: 4, learningRate: 0.05, seed: 'fan-out' })
      .expect(202);
    const { modelId, jobId } = created.body;

    const doomed = (t: TaskRow) => (t.worker_id ?? '').startsWith('doomed:');
    const caught = await waitFor(
      () => tasksOf(jobId),
      (tasks) => tasks.some((t) => doomed(t) && t.state === 'running') || (tasks.length === 4 && tasks.every((t) => t.state === 'completed')),
      120_000,
    );
    const running = caught.find((t) => doomed(t) && t.state === 'running');
    expect(running).toBeDefined(); // else the shards trained too fast to catch one: make them longer
    const killedShard = running!.shard;
    child.kill('SIGKILL');

    const job = await waitFor(
      async () => (await http().get(`/v1/jobs/${jobId}`).auth(h.ml, { type: 'bearer' }).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      240_000,
    );
    expect(job).toMatchObject({ state: 'completed', result: { modelId, version: 1 } });
    // One task per shard, each completed by a named worker in some seconds.
    expect(job.tasks.map((t: { shard: number }) => t.shard)).toEqual([0, 1, 2, 3]);
    for (const task of job.tasks) {
      expect(task).toMatchObject({ modelId, version: 1, state: 'completed', worker: expect.any(String), seconds: expect.any(Number), progress: 1 });
      expect(task.seconds).toBeGreaterThan(0);
    }
    // The killed shard was trained again by the surviving worker; no other shard was trained twice.
    const rows = await tasksOf(jobId);
    expect(rows.find((t) => t.shard === killedShard)).toMatchObject({ attempts: 2, worker_id: inProcess.workerId });
    expect(rows.filter((t) => t.shard !== killedShard).map((t) => t.attempts)).toEqual([1, 1, 1]);
    expect(logs.join('')).not.toContain(`shard ${killedShard} of model ${modelId} version 1 trained`);

    // Published once, and the bytes of one process training the same samples.
    const published: unknown[] = await h.dataSource.query(`SELECT idx FROM ledger_entries WHERE type = 'MODEL_PUBLISHED' AND event LIKE $1`, [`%${modelId}%`]);
    expect(published).toHaveLength(1);
    const { body: model } = await http().get(`/v1/models/${modelId}`).auth(h.ml, { type: 'bearer' }).expect(200);
    const samples: Sample[] = iris.map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    expect(model.versions[0].onnxSha256).toBe(await fromScratchSha256(config, samples));
    trained = { modelId, commitments };
  }, 400_000);

  it('an unlearning pass that retrains several shards sends them as shard tasks too, and publishes the from-scratch bytes', async () => {
    const http = () => request(h.app.getHttpServer());
    const { modelId, commitments } = trained!;
    // Eight samples spread over the dataset: several of the four shards are retrained from their first affected slice.
    const forgotten = new Set(['iris-003', 'iris-024', 'iris-045', 'iris-066', 'iris-087', 'iris-108', 'iris-129', 'iris-149']);
    const created = await http().post('/v1/forget-requests').auth(h.ml, { type: 'bearer' }).send({ datasetId: datasetIdOf(), externalIds: [...forgotten], reason: 'erasure' }).expect(202);
    const done = await waitFor(
      async () => (await http().get(`/v1/forget-requests/${created.body.id}`).auth(h.ml, { type: 'bearer' }).expect(200)).body,
      (r) => r.state === 'completed' || r.state === 'failed',
      240_000,
    );
    expect(done).toMatchObject({ state: 'completed', modelVersions: [expect.objectContaining({ modelId, version: 2 })] });
    const { body: pass } = await http().get(`/v1/jobs/${done.jobId}`).auth(h.ml, { type: 'bearer' }).expect(200);
    expect(pass.tasks.length).toBeGreaterThanOrEqual(2);
    for (const task of pass.tasks) expect(task).toMatchObject({ modelId, version: 2, state: 'completed', worker: inProcess!.workerId, attempts: 1 });
    const retained: Sample[] = iris.filter((s) => !forgotten.has(s.externalId)).map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    expect(done.modelVersions[0].onnxSha256).toBe(await fromScratchSha256(config, retained));
  }, 400_000);
});
