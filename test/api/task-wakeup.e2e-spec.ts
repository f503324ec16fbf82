import { randomUUID } from 'node:crypto';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { openDatabase } from '@lethe/ledger';
import { MemoryCheckpointStore, ShardResult, ShardTask } from '@lethe/unlearning';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { startJobBoss } from '../../apps/api/src/jobs/job.boss';
import { JobTaskRepository } from '../../apps/api/src/jobs/job-task.repository';
import { JobListener } from '../../apps/api/src/jobs/job.notifier';
import { ShardTaskQueue } from '../../apps/api/src/jobs/shard-task.queue';
import { createTestDatabase, TestDatabase } from '../support/database';
import { testJobConfig } from '../support/job-harness';
import { waitFor } from '../support/probe';

/**
 * A shard task that ends (completed, or failed for good) wakes the job waiting for it: its row's change notifies
 * TASK_CHANNEL with the job's id (when it commits), a worker's listener hands it to the ShardTaskQueue, and the
 * waiting job reads its tasks then, handing each result to the engine as it arrives (onResult), not only at the end.
 * The tasks here are ended by the test, as a worker would end them (claim, then complete or endAttempt).
 */
describe('shard tasks wake the job that waits for them', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let boss: PgBoss;
  let listener: JobListener;
  let queue: ShardTaskQueue;
  let repository: JobTaskRepository;
  const ended: (string | null)[] = [];
  const config = testJobConfig();

  beforeAll(async () => {
    db = await createTestDatabase('task_wakeup');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    boss = await startJobBoss(db.url, config);
    repository = new JobTaskRepository(dataSource);
    queue = new ShardTaskQueue(boss, repository, config);
    listener = new JobListener(
      db.url,
      () => undefined,
      (jobId) => {
        ended.push(jobId);
        queue.taskEnded(jobId);
      },
    );
    await listener.start();
  });

  afterAll(async () => {
    queue?.stop();
    await listener?.stop();
    await boss?.stop({ graceful: false, wait: true });
    await dataSource?.destroy();
    await db?.drop();
  });

  async function newJob(): Promise<string> {
    const id = randomUUID();
    await dataSource.query(`INSERT INTO jobs (id, type, state, payload, progress, attempts) VALUES ($1, 'lethe.train', 'running', '{}', 0, 1)`, [id]);
    return id;
  }

  /** A task as the engine would send it (nothing here trains it: the test plays the worker). */
  const taskOf = (modelId: string, shard: number) => ({ modelId, version: 1, shard, fromSlice: 0, kept: [], commitments: [[`c${shard}`]] }) as unknown as ShardTask;

  /** Plays a worker: takes the task of `shard` once the job has sent it, then ends it with `end`. */
  async function endTask(jobId: string, shard: number, end: (id: string, worker: string) => Promise<unknown>): Promise<void> {
    const rows = await waitFor(() => repository.findByJob(jobId), (r) => r.some((t) => t.shard === shard && t.state === 'queued'), 60_000);
    const row = rows.find((t) => t.shard === shard)!;
    expect(await repository.claim(row.id, row.generation, 'probe', config.lostAfterSeconds)).toHaveProperty('input');
    await end(row.id, 'probe');
  }

  it('a completed task notifies its job, which takes each result as it arrives and returns them in task order', async () => {
    const jobId = await newJob();
    const modelId = randomUUID();
    const dispatcher = queue.dispatcherFor(jobId, new MemoryCheckpointStore())!;
    const arrived: number[] = [];
    const training = dispatcher.train([taskOf(modelId, 0), taskOf(modelId, 1)], undefined, (index, result) => arrived.push(index, result.shard));
    const resultOf = (shard: number) => ({ shard, fromSlice: 0, steps: shard + 1 }) as unknown as ShardResult;

    await endTask(jobId, 1, (id, worker) => repository.complete(id, worker, resultOf(1)));
    await waitFor(async () => ended.filter((j) => j === jobId).length, (n) => n === 1, 60_000);
    await waitFor(async () => arrived, (a) => a.length > 0, 60_000);
    expect(arrived).toEqual([1, 1]); // shard 1's result, at index 1, while shard 0 still runs

    await endTask(jobId, 0, (id, worker) => repository.complete(id, worker, resultOf(0)));
    expect(await training).toEqual([resultOf(0), resultOf(1)]);
    expect(arrived).toEqual([1, 1, 0, 0]); // each result handed over once
    expect(ended.filter((j) => j === jobId)).toHaveLength(2);
  }, 120_000);

  it('a task that fails for good notifies its job, whose wait fails naming the shard and the error', async () => {
    const jobId = await newJob();
    const modelId = randomUUID();
    const training = queue.dispatcherFor(jobId, new MemoryCheckpointStore())!.train([taskOf(modelId, 0), taskOf(modelId, 1)]);
    const failure = training.then(
      () => undefined,
      (e: Error) => e.message,
    );
    await endTask(jobId, 0, (id, worker) => repository.endAttempt(id, worker, 'checkpoint abc is not in the store', 'final'));
    await waitFor(async () => ended.filter((j) => j === jobId).length, (n) => n === 1, 60_000);
    expect(await failure).toBe(`shard 0 of model ${modelId} version 1 failed: checkpoint abc is not in the store`);
  }, 120_000);

  it('a change that ends no task (its worker no longer holds it) notifies nothing', async () => {
    const jobId = await newJob();
    const modelId = randomUUID();
    const training = queue.dispatcherFor(jobId, new MemoryCheckpointStore())!.train([taskOf(modelId, 0)]);
    const rows = await waitFor(() => repository.findByJob(jobId), (r) => r.length === 1, 60_000);
    expect(await repository.complete(rows[0].id, 'not-the-holder', { shard: 0 })).toBe(false);
    // Then the real end: its notification is the first (and only) one for this job.
    await endTask(jobId, 0, (id, worker) => repository.complete(id, worker, { shard: 0 }));
    await training;
    await waitFor(async () => ended.filter((j) => j === jobId).length, (n) => n >= 1, 60_000);
    expect(ended.filter((j) => j === jobId)).toHaveLength(1);
  }, 120_000);
});
