/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { plainToInstance } from 'class-transformer';
import { Sample, loadIris } from '@lethe/unlearning';
import type { DatasetEntity } from '../../apps/api/src/datasets/dataset.entity';
import { SHARD_JOB } from '../../apps/api/src/jobs/job.entity';
import { taskMessageId } from '../../apps/api/src/jobs/job-task.repository';
import { CreateModelDto, toEngineConfig } from '../../apps/api/src/models/model.dto';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { uploadDataset } from '../support/api-data';
import { fromScratchSha256 } from '../support/from-scratch';
import { JobHarness, startAnotherWorker, startJobHarness, startWorkerProcess } from '../support/job-harness';
import { waitFor } from '../support/probe';

/** An hour: pg-boss would deliver a message again only once it expired, far beyond every wait here. */
const JOBS = { expireSeconds: 3600, retryLimit: 50, lostAfterSeconds: 4 };

interface TaskRow {
  id: string;
  shard: number;
  state: string;
  generation: number;
  attempts: number;
  worker_id: string | null;
}

/**
 * A worker process killed (SIGKILL) after pg-boss handed it a shard task's message (`lethe.shard`, now active)
 * and before it took the task (claimed its row, which stays queued with no worker and no heartbeat): the
 * task's heartbeat-based retry never sees it (it never ran), sending its message again is a no-op (same id), and
 * pg-boss held the message active until it expired (JOB_EXPIRE_SECONDS, an hour by default), so the version
 * waited an hour. The same gap as jobs delivered to the dead (jobs-delivered-to-the-dead.e2e-spec.ts), for
 * shard tasks. The worker is a real `npm run worker` process that dies at the delivery, not by chance:
 * test/support/die-on-delivery.js kills it there. The job that waits for the task (retried by the surviving
 * worker) sends it again under a new generation, and the version publishes with the single-process bytes.
 */
describe('a shard task delivered to a worker that died before taking it', () => {
  let h: JobHarness;
  let survivor: JobWorker | undefined;
  let doomed: ChildProcess | undefined;
  let doomedOutput = '';
  const iris = loadIris();
  const body = { method: 'sisa', shards: 4, slices: 2, architecture: { type: 'mlp', hidden: [16] }, epochs: 200, batchSize: 4, learningRate: 0.05, seed: 'delivered-to-the-dead' };
  /** The engine's config of the training asked for: what one process trains to compare the published bytes with. */
  const config = toEngineConfig(plainToInstance(CreateModelDto, body), { features: 4, classes: 3 } as DatasetEntity);

  beforeAll(async () => {
    // No worker in this process at first: the worker process is the only one, so the training and the first
    // shard message are both its own.
    h = await startJobHarness('shard_task_dead', { worker: false, jobs: JOBS });
  });

  afterAll(async () => {
    if (doomed && doomed.exitCode === null && doomed.signalCode === null) doomed.kill('SIGKILL');
    await survivor?.stop();
    await h?.close();
  });

  const http = () => request(h.app.getHttpServer());
  const tasksOf = (jobId: string): Promise<TaskRow[]> =>
    h.dataSource.query(`SELECT id, shard, state, generation, attempts, worker_id FROM job_tasks WHERE job_id = $1 AND superseded_at IS NULL ORDER BY shard`, [jobId]);

  it('is sent again promptly under a new generation, and the version publishes with the single-process bytes', async () => {
    const { datasetId, commitments } = await uploadDataset(h, iris);
    doomed = await startWorkerProcess(
      h,
      {
        WORKER_NAME: 'doomed',
        JOB_EXPIRE_SECONDS: String(JOBS.expireSeconds),
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(__dirname, '..', 'support', 'die-on-delivery.js')}`,
        DIE_ON_DELIVERY_OF: SHARD_JOB,
      },
      (text) => (doomedOutput += text),
    );
    // 'close': the process has exited and its output has all been read (after 'exit', some may still be on its way).
    const exited = new Promise<void>((resolve) => doomed!.on('close', () => resolve()));
    const created = await http().post('/v1/models').auth(h.ml, { type: 'bearer' }).send({ datasetId, ...body }).expect(202);
    const { modelId, jobId } = created.body;

    // The worker process takes the training, sends its shard tasks, is handed one, and dies there.
    await exited;
    expect(doomed.signalCode).toBe('SIGKILL');
    const delivered = /die-on-delivery: lethe\.shard message\(s\) (\S+) delivered/.exec(doomedOutput)?.[1];
    expect(delivered).toBeDefined();
    const tasks = await tasksOf(jobId);
    expect(tasks.map((t) => t.shard)).toEqual([0, 1, 2, 3]);
    const lost = tasks.find((t) => taskMessageId(t) === delivered)!;
    // The gap: the message is delivered (active), its task untaken (queued, no worker, no attempt).
    expect(lost).toMatchObject({ state: 'queued', generation: 0, attempts: 0, worker_id: null });
    expect((await h.boss.getJobById(SHARD_JOB, delivered!))?.state).toBe('active');
    const [training] = await h.dataSource.query(`SELECT state, worker_id FROM jobs WHERE id = $1`, [jobId]);
    expect(training).toMatchObject({ state: 'running', worker_id: expect.stringMatching(/^doomed:/) });

    // The surviving worker retries the training (its worker stopped answering), which waits for its shard tasks.
    survivor = await startAnotherWorker(h, JOBS);
    // Bounded far below the message's expiry (an hour): completing at all means the lost delivery was replaced.
    const job = await waitFor(
      async () => (await http().get(`/v1/jobs/${jobId}`).auth(h.ml, { type: 'bearer' }).expect(200)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      600_000,
    );
    expect(job).toMatchObject({ state: 'completed', result: { modelId, version: 1 } });
    const after = await tasksOf(jobId);
    expect(after.map((t) => t.state)).toEqual(['completed', 'completed', 'completed', 'completed']);
    // The lost task ran under a new generation (its message sent again), on the survivor, the one worker left.
    const revived = after.find((t) => t.id === lost.id)!;
    expect(revived.generation).toBeGreaterThanOrEqual(1);
    expect(revived.worker_id).toBe(survivor.workerId);
    // Not pg-boss's expiry: the dead worker's delivery is still active, never delivered again.
    expect((await h.boss.getJobById(SHARD_JOB, delivered!))?.state).toBe('active');

    // Published once, with the bytes of one process training the same samples.
    const published: unknown[] = await h.dataSource.query(`SELECT idx FROM ledger_entries WHERE type = 'MODEL_PUBLISHED' AND event LIKE $1`, [`%${modelId}%`]);
    expect(published).toHaveLength(1);
    const { body: model } = await http().get(`/v1/models/${modelId}`).auth(h.ml, { type: 'bearer' }).expect(200);
    const samples: Sample[] = iris.map((s) => ({ ...s, commitment: commitments.get(s.externalId)! }));
    expect(model.versions[0].onnxSha256).toBe(await fromScratchSha256(config, samples));
  }, 900_000);
});
