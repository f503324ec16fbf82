import { Inject, Injectable } from '@nestjs/common';
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { CheckpointStore, ShardDispatcher, ShardResult, ShardTask } from '@lethe/unlearning';
import { JOB_CONFIG, JobConfig } from './job.config';
import { SHARD_JOB } from './job.entity';
import { JobTaskRepository, TaskRow, taskMessageId } from './job-task.repository';
import { sendJob } from './job.notifier';

/**
 * How often a job that waits for its shard tasks reads their rows when nothing wakes it: a task that ends wakes
 * it at once (TASK_CHANNEL), so this is the fallback, and the pace of its progress reports.
 */
const WAIT_POLL_MS = 1000;

/** A job's wait for its tasks: how many times it was woken, and the wake-up its nap listens for. */
interface Waiter {
  wakes: number;
  wake?: () => void;
}

/** The message of a shard task: its row, and the generation the message is for (an older one is stale). */
export interface ShardMessage {
  taskId: string;
  generation: number;
}

/**
 * Sends a job's shard tasks to the workers (one pg-boss message each, queue `lethe.shard`) and waits for
 * them: the engine's ShardDispatcher for the job that publishes the version. The job holds its worker's
 * training or unlearning slot while it waits, not its shard slot: its own worker trains shards meanwhile.
 */
@Injectable()
export class ShardTaskQueue {
  private stopping = false;
  /** The waits here for a job's tasks, by job: how many times each was woken, and the wake-up it listens for. */
  private readonly waiting = new Map<string, Set<Waiter>>();

  constructor(
    private readonly boss: PgBoss,
    private readonly tasks: JobTaskRepository,
    @Inject(JOB_CONFIG) private readonly config: JobConfig,
  ) {}

  /** The dispatcher of the job `jobId`, for versions whose checkpoints go to `store`; undefined when SHARD_TASKS=off. */
  dispatcherFor(jobId: string, store: CheckpointStore): ShardDispatcher | undefined {
    if (!this.config.shardTasks) return undefined;
    return { store, train: (tasks, onProgress, onResult) => this.train(jobId, tasks, onProgress, onResult) };
  }

  /** Jobs that wait for their tasks stop waiting (with an error: the job is handed back and retried). */
  stop(): void {
    this.stopping = true;
    this.taskEnded(null);
  }

  /** A task of job `jobId` ended (TASK_CHANNEL), or of any job for null: the job, if it waits here, reads its tasks now. */
  taskEnded(jobId: string | null): void {
    for (const [id, waiters] of this.waiting) {
      if (jobId !== null && id !== jobId) continue;
      for (const waiter of waiters) {
        waiter.wakes++;
        waiter.wake?.();
      }
    }
  }

  private async train(
    jobId: string,
    tasks: ShardTask[],
    onProgress?: (fraction: number) => void,
    onResult?: (index: number, result: ShardResult) => void,
  ): Promise<ShardResult[]> {
    // Listening before the tasks are sent: a task that ends before the first read of the rows is not missed.
    const waiter: Waiter = { wakes: 0 };
    const waiters = this.waiting.get(jobId) ?? new Set<Waiter>();
    this.waiting.set(jobId, waiters.add(waiter));
    try {
      const rows = await this.tasks.ensure(
        jobId,
        tasks.map((task) => ({ modelId: task.modelId, version: task.version, shard: task.shard, input: task, inputSha256: hashTask(task) })),
      );
      for (const row of rows) if (row.state === 'queued') await this.send(row);
      const ids = rows.map((r) => r.id);
      const reported = new Set<string>();
      let lastCheck = Date.now();
      for (;;) {
        if (this.stopping) throw new Error(`job ${jobId} stopped waiting for its shard tasks: its worker is stopping`);
        const wakes = waiter.wakes;
        const byId = new Map((await this.tasks.find(ids)).map((r) => [r.id, r]));
        const now = ids.map((id) => byId.get(id)!);
        if (Date.now() - lastCheck > this.config.lostAfterSeconds * 1000) {
          lastCheck = Date.now();
          await this.reviveLost(now.filter((r) => r.state === 'queued'));
        }
        const failed = now.find((r) => r.state === 'failed');
        if (failed) throw new Error(`shard ${failed.shard} of model ${failed.modelId} version ${failed.version} failed: ${failed.error}`);
        now.forEach((r, i) => {
          if (r.state !== 'completed' || reported.has(r.id)) return;
          reported.add(r.id);
          onResult?.(i, r.result as ShardResult);
        });
        onProgress?.(now.reduce((sum, r) => sum + (r.state === 'completed' ? 1 : r.progress), 0) / now.length);
        if (now.every((r) => r.state === 'completed')) return now.map((r) => r.result as ShardResult);
        if (waiter.wakes === wakes) await this.nap(waiter); // woken meanwhile: read again at once
      }
    } finally {
      waiters.delete(waiter);
      if (waiters.size === 0 && this.waiting.get(jobId) === waiters) this.waiting.delete(jobId);
    }
  }

  /** Until a task of the waiting job ends (or the worker stops), or WAIT_POLL_MS at most. */
  private async nap(waiter: Waiter): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WAIT_POLL_MS);
      waiter.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    waiter.wake = undefined;
  }

  /**
   * Queued tasks whose message pg-boss no longer holds as pending (it finished it: a worker saw the task
   * running elsewhere at the time, or it ran out of deliveries) get a new generation and message; so do those
   * whose message was delivered JOB_LOST_AFTER_SECONDS ago and not taken since (a worker claims its task at
   * once: this one died in between, and pg-boss would hold the message active until it expires, an hour by
   * default, while sending it again does nothing, same id). Should that worker still claim the task, its
   * generation is stale and the claim is refused: the task runs once.
   */
  private async reviveLost(queued: TaskRow[]): Promise<void> {
    for (const row of queued) {
      const message = await this.boss.getJobById(SHARD_JOB, taskMessageId(row));
      if (message && ['created', 'retry'].includes(message.state)) continue;
      if (message?.state === 'active' && message.startedOn.getTime() > Date.now() - this.config.lostAfterSeconds * 1000) continue;
      const renewed = await this.tasks.renew(row.id);
      if (renewed) await this.send(renewed);
    }
  }

  /**
   * Sends a task's message (its generation's id: sending it again is harmless), and wakes the shard pollers
   * of every worker (NOTIFY, as every job is sent): a task starts at once, not at a worker's next poll.
   */
  async send(row: Pick<TaskRow, 'id' | 'generation'>): Promise<void> {
    const message: ShardMessage = { taskId: row.id, generation: row.generation };
    await sendJob(this.boss, SHARD_JOB, message, { id: taskMessageId(row) });
  }
}

/** A task's identity: the SHA-256 of its RFC 8785 JSON. */
function hashTask(task: ShardTask): string {
  return createHash('sha256').update(canonicalize(task) as string).digest('hex');
}
