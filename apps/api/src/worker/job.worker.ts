import { Inject, Injectable, Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { ArtifactError } from '@lethe/artifacts';
import { holdHeapForTraining, PhaseClock, Progress, ShardTask } from '@lethe/unlearning';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { JOB_CONFIG, JobConfig } from '../jobs/job.config';
import { BIAS_SCAN_JOB, SHARD_JOB, TRAIN_JOB, UNLEARN_JOB } from '../jobs/job.entity';
import { BiasScanRunner } from '../unlearning/bias-scan.runner';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { JobListener, sendJob } from '../jobs/job.notifier';
import { JobRepository } from '../jobs/job.repository';
import { JobTaskRepository, taskMessageId } from '../jobs/job-task.repository';
import { ShardMessage, ShardTaskQueue } from '../jobs/shard-task.queue';
import { ModelTrainingService } from '../models/model-training.service';
import { ShardTaskService } from '../models/shard-task.service';
import { isRetraining, modelDoneFraction } from '../models/model.progress';
import { PassClock } from '../unlearning/pass-clock';
import { RetirementService } from '../unlearning/retirement.service';
import { UnlearningService } from '../unlearning/unlearning.service';
/** How often a running job's progress and heartbeat are written. */
const PROGRESS_EVERY_MS = 1000;

/**
 * Takes training and unlearning jobs from pg-boss; one per process by default, and any number of
 * processes may run on one database (`npm start` runs one, `npm run worker` more). A job whose worker
 * dies stops getting heartbeats and is retried elsewhere (or, at the latest, when pg-boss expires it);
 * `stop` lets running jobs finish for a while, then hands them back to the queue (pg-boss fails them,
 * which retries them).
 */
@Injectable()
export class JobWorker {
  /** WORKER_NAME (default: the host's name and the process id), with a random suffix: unique among workers. */
  readonly workerId = `${process.env.WORKER_NAME?.trim() || `${hostname()}:${process.pid}`}:${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger('Worker');
  private readonly running = new Set<string>();
  /** Shard tasks this worker runs. */
  private readonly runningTasks = new Set<string>();
  /** Set while this worker takes no job: its artifact store was out of reach (pauseIntake). */
  private resume: NodeJS.Timeout | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private stopping = false;
  /** pg-boss's worker polling each queue for this one, woken by the listener. */
  private readonly bossWorkers = new Map<string, string>();
  private readonly listener: JobListener;
  /**
   * Datasets whose last pass in this worker completed: their next pass skips the crash-recovery look-ups (see
   * UnlearningPassOptions.recover), which a worker's first pass over a dataset, a retried job and the pass
   * after a failed one make.
   */
  private readonly recovered = new Set<string>();

  constructor(
    dataSource: DataSource,
    private readonly boss: PgBoss,
    @Inject(JOB_CONFIG) private readonly config: JobConfig,
    private readonly jobs: JobRepository,
    private readonly requests: ForgetRequestRepository,
    private readonly training: ModelTrainingService,
    private readonly unlearning: UnlearningService,
    private readonly retirement: RetirementService,
    private readonly biasScans: BiasScanRunner,
    private readonly tasks: JobTaskRepository,
    private readonly shardTasks: ShardTaskQueue,
    private readonly shardTraining: ShardTaskService,
  ) {
    // A sent job wakes its queue's pg-boss worker at once; polling every JOB_POLL_SECONDS stays the fallback.
    // A shard task that ends wakes the job waiting for it here (its slow poll of the task rows stays the fallback).
    this.listener = new JobListener(
      (dataSource.options as { url: string }).url,
      (queue) => this.wake(queue),
      (jobId) => this.shardTasks.taskEnded(jobId),
    );
  }

  async start(): Promise<void> {
    await this.takeJobs();
    await this.listener.start();
    // Retirements and deletions a crash (or a database from before retirement) left half done; a failure here
    // is logged, not fatal: the next start tries again, and passes keep serving forget requests meanwhile.
    await this.retirement.finishInterrupted().catch((e: unknown) => this.logger.warn(`finishing retirements at start: ${describeJobError(e)}`));
    await this.unlearning.finishInterrupted().catch((e: unknown) => this.logger.warn(`writing owed batch members at start: ${describeJobError(e)}`));
    await this.resendWaiting();
    await this.retryLost();
    this.reaper = setInterval(
      () => void this.retryLost().catch((e) => this.logger.warn(`looking for lost jobs: ${(e as Error).message}`)),
      (this.config.lostAfterSeconds * 1000) / 2,
    );
    this.logger.log(`worker ${this.workerId} takes jobs ${TRAIN_JOB}, ${UNLEARN_JOB}, ${BIAS_SCAN_JOB} and ${SHARD_JOB}`);
  }

  /** Polls the three queues; shard tasks have a poller of their own: a job that waits for its tasks never keeps its worker from training one. */
  private async takeJobs(): Promise<void> {
    const work = { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: this.config.pollSeconds };
    this.bossWorkers.set(
      TRAIN_JOB,
      await this.boss.work<{ jobId: string; modelId: string }>(TRAIN_JOB, work, ([job]) =>
        whileTraining(() => this.runTraining(job as PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>)),
      ),
    );
    this.bossWorkers.set(
      UNLEARN_JOB,
      await this.boss.work<UnlearnMessage>(UNLEARN_JOB, work, ([job]) =>
        whileTraining(() => this.runUnlearning(job as PgBoss.JobWithMetadata<UnlearnMessage>)),
      ),
    );
    this.bossWorkers.set(
      BIAS_SCAN_JOB,
      await this.boss.work<BiasScanMessage>(BIAS_SCAN_JOB, work, ([job]) =>
        whileTraining(() => this.runBiasScan(job as PgBoss.JobWithMetadata<BiasScanMessage>)),
      ),
    );
    this.bossWorkers.set(
      SHARD_JOB,
      await this.boss.work<ShardMessage>(SHARD_JOB, work, ([job]) => whileTraining(() => this.runShardTask(job as PgBoss.JobWithMetadata<ShardMessage>))),
    );
  }

  /**
   * A worker whose artifact store is out of reach can do nothing right: it stops taking jobs and shard tasks
   * for JOB_LOST_AFTER_SECONDS (what it runs finishes or fails), so that other workers take them, then tries again.
   */
  private pauseIntake(error: unknown): boolean {
    if (!(error instanceof ArtifactError && error.code === 'UNAVAILABLE')) return false;
    if (this.resume !== undefined || this.stopping) return true;
    this.logger.warn(`takes no job for ${this.config.lostAfterSeconds} s: ${describeJobError(error)}`);
    for (const id of this.bossWorkers.values()) void this.boss.offWork({ id });
    this.bossWorkers.clear();
    this.resume = setTimeout(() => {
      this.resume = undefined;
      if (!this.stopping) void this.takeJobs().catch((e: unknown) => this.logger.error(`taking jobs again: ${describeJobError(e)}`));
    }, this.config.lostAfterSeconds * 1000);
    return true;
  }

  /** Lets running jobs finish (up to JOB_STOP_TIMEOUT_SECONDS), then hands the others back to the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.reaper);
    await this.listener.stop();
    clearTimeout(this.resume);
    this.shardTasks.stop(); // jobs waiting for their shard tasks are handed back, and retried elsewhere
    await this.boss.stop({ graceful: true, wait: true, timeout: this.config.stopTimeoutSeconds * 1000 });
    if (this.runningTasks.size > 0) await this.tasks.handBack([...this.runningTasks], this.workerId, 'its worker stopped; it will be retried');
    await this.shardTraining.release();
    if (this.running.size > 0) {
      // Running jobs, and unlearning passes still waiting for their dataset (queued, held by this worker).
      await this.jobs.handBack([...this.running], this.workerId, 'its worker stopped; it will be retried');
    } else {
      // The engines kept between passes (a pass still running keeps its own until the process ends).
      await this.unlearning.close();
    }
  }

  /**
   * Sends again what waits in the tables, in case a message was lost: queued jobs (same id, so an existing
   * pg-boss job is not doubled), after making sure that every dataset with forget requests still
   * `received` or `unlearning` has a waiting unlearning pass.
   */
  async resendWaiting(): Promise<void> {
    const datasets = await this.requests.findDatasetsWithWaitingRequests();
    for (const datasetId of datasets) await this.jobs.findOrCreateWaitingPass(datasetId);
    const jobs = await this.jobs.findQueued();
    for (const job of jobs) await sendJob(this.boss, job.type, { jobId: job.id, ...job.payload }, { id: job.id });
    if (jobs.length > 0) this.logger.log(`sent again ${jobs.length} queued job(s) (forget requests wait in ${datasets.length} dataset(s))`);
    const tasks = await this.tasks.findWaiting();
    for (const task of tasks) await this.shardTasks.send(task);
  }

  /**
   * Hands back to the queue the jobs whose worker stopped writing heartbeats (it crashed, or its machine
   * did): running ones, and unlearning passes that a worker held while waiting for their dataset. pg-boss
   * fails them, which retries them now rather than when they expire.
   */
  async retryLost(): Promise<number> {
    const lost = await this.jobs.handBackLost(this.config.lostAfterSeconds, 'its worker stopped answering; it will be retried');
    for (const job of lost) await this.boss.fail(job.type, job.id, { message: 'its worker stopped answering' });
    if (lost.length > 0)
      this.logger.warn(`retrying ${lost.length} job(s) whose worker stopped answering: ${lost.map((j) => j.id).join(', ')}`);
    // Delivered by pg-boss to a worker that died before taking it (no heartbeat ever): pg-boss holds it active
    // until it expires (JOB_EXPIRE_SECONDS, an hour), and sending it again is a no-op (same id); fail it, so that
    // pg-boss retries it now. A worker that did take it since holds it: the claim then refuses a second taker.
    const dropped: string[] = [];
    for (const job of await this.jobs.findUnheldQueued(this.config.lostAfterSeconds)) {
      const message = await this.boss.getJobById(job.type, job.id);
      if (message?.state !== 'active' || message.startedOn.getTime() > Date.now() - this.config.lostAfterSeconds * 1000) continue;
      await this.boss.fail(job.type, job.id, { message: 'the worker it was delivered to stopped before taking it' });
      dropped.push(job.id);
    }
    if (dropped.length > 0)
      this.logger.warn(`retrying ${dropped.length} job(s) delivered to a worker that stopped before taking them: ${dropped.join(', ')}`);
    // Shard tasks whose worker died: only they run again (their job waits on, in its own worker, or is retried above).
    const lostTasks = await this.tasks.handBackLost(this.config.lostAfterSeconds, 'its worker stopped answering; it will be retried');
    for (const task of lostTasks) {
      await this.boss.fail(SHARD_JOB, taskMessageId(task), { message: 'its worker stopped answering' });
      await this.shardTasks.send(task); // in case its message is gone: the same id, so never twice
    }
    if (lostTasks.length > 0)
      this.logger.warn(`retrying ${lostTasks.length} shard task(s) whose worker stopped answering: ${lostTasks.map((t) => `shard ${t.shard} of model ${t.modelId}`).join(', ')}`);
    return lost.length + dropped.length + lostTasks.length;
  }

  private async runTraining(job: PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>): Promise<void> {
    const { jobId, modelId } = job.data;
    const delivered = Date.now();
    if (!(await this.take(jobId, 'run'))) return;
    this.running.add(jobId);
    const progress = this.jobProgress(jobId);
    try {
      const result = await this.training.train(modelId, (p) => progress.update(p), { jobId });
      await progress.close();
      // How long the message waited before this worker got it (sent to delivered): before the training's phases.
      if (result.timings) Object.assign(result.timings.seconds, { delivery: (delivered - job.createdOn.getTime()) / 1000 });
      await this.jobs.complete(jobId, result);
    } catch (error) {
      await progress.close();
      this.pauseIntake(error);
      const message = describeJobError(error);
      const permanent = isPermanentJobError(error);
      const lastAttempt = job.retryCount >= job.retryLimit;
      if (permanent || lastAttempt) {
        await this.jobs.fail(jobId, message);
        await this.training.markFailed(modelId, message);
        this.logger.error(`job ${jobId} (model ${modelId}) failed: ${message}`);
        return;
      }
      await this.jobs.requeue(jobId, this.workerId, message);
      this.logger.warn(`job ${jobId} (model ${modelId}) will be retried: ${message}`);
      throw error;
    } finally {
      this.running.delete(jobId);
    }
  }

  /**
   * One unlearning pass over a dataset. The job stays `queued` (held by this worker, with heartbeats) while
   * it waits for the dataset (another pass or a training holds it), so requests arriving meanwhile join it;
   * it is claimed (`running`) once the dataset is held, and takes every waiting request then. An error a
   * retry may fix puts it back to `queued` and pg-boss retries it; its requests stay `unlearning`.
   */
  private async runUnlearning(job: PgBoss.JobWithMetadata<UnlearnMessage>): Promise<void> {
    const clock = new PassClock();
    const { jobId, datasetId } = job.data;
    if (jobId === undefined) {
      // A message from before passes were jobs (one per request): the dataset's waiting pass serves it.
      await this.sendWaitingPass(datasetId);
      return;
    }
    if (!(await this.take(jobId, 'hold'))) return;
    this.running.add(jobId);
    const progress = this.jobProgress(jobId);
    const lastAttempt = job.retryCount >= job.retryLimit;
    const recover = job.retryCount > 0 || !this.recovered.has(datasetId);
    this.recovered.delete(datasetId); // until this pass completes
    try {
      const result = await this.unlearning.unlearnDataset(datasetId, {
        jobId,
        lastAttempt,
        clock,
        recover,
        onProgress: (p) => progress.set(p.fraction, p.etaSeconds),
        onLocked: async (manager) => {
          if (this.stopping) throw new Error('its worker is stopping');
          if (!(await this.jobs.start(jobId, this.workerId, manager)))
            throw new Error(`job ${jobId} was handed to another worker while this one waited for dataset ${datasetId}`);
        },
      });
      await progress.close();
      const outcome = {
        requestIds: result.requestIds,
        modelVersions: result.modelVersions,
        ...(result.failedModels ? { failedModels: result.failedModels } : {}),
        timings: result.timings,
      };
      if (result.error === undefined) {
        await this.jobs.complete(jobId, outcome);
        if (result.requestIds.length > 0) this.recovered.add(datasetId); // it looked (a pass that took nothing did not)
      } else {
        await this.jobs.fail(jobId, result.error, outcome);
        this.logger.error(`job ${jobId} (unlearning dataset ${datasetId}) failed: ${result.error}`);
      }
    } catch (error) {
      await progress.close();
      this.pauseIntake(error);
      const message = describeJobError(error);
      if (lastAttempt) {
        // pg-boss will not deliver it again: any request it left `unlearning` goes to the dataset's waiting pass.
        await this.jobs.fail(jobId, message);
        const waiting = await this.sendWaitingPass(datasetId);
        this.logger.error(`job ${jobId} (unlearning dataset ${datasetId}) failed; its requests wait for job ${waiting}: ${message}`);
        return;
      }
      await this.jobs.requeue(jobId, this.workerId, message);
      this.logger.warn(`job ${jobId} (unlearning dataset ${datasetId}) will be retried: ${message}`);
      throw error;
    } finally {
      this.running.delete(jobId);
    }
  }

  /** A bias scan: read-only (nothing is logged), so a failure fails the job; asking again starts a new one. */
  private async runBiasScan(job: PgBoss.JobWithMetadata<BiasScanMessage>): Promise<void> {
    const { jobId, modelId, modelVersion } = job.data;
    if (!(await this.take(jobId, 'run'))) return;
    this.running.add(jobId);
    // A leave-one-slice-out scan retrains every slice: its progress, and heartbeats, as a training's.
    const progress = this.jobProgress(jobId);
    try {
      const result = await this.biasScans.run(jobId, modelId, modelVersion, (fraction) => progress.set(fraction, null));
      await progress.close();
      await this.jobs.complete(jobId, result);
    } catch (error) {
      await progress.close();
      const message = describeJobError(error);
      await this.jobs.fail(jobId, message);
      this.logger.error(`job ${jobId} (bias scan of model ${modelId}) failed: ${message}`);
    } finally {
      this.running.delete(jobId);
    }
  }

  /**
   * Takes a job that pg-boss delivered (see JobRepository.claim); false when it has finished already (nothing
   * to do). While another worker runs it, throws: pg-boss delivers it again later.
   */
  private async take(jobId: string, mode: 'run' | 'hold'): Promise<boolean> {
    if (this.running.has(jobId)) throw new Error(`job ${jobId} is still running in this worker`);
    const outcome = await this.jobs.claim(jobId, this.workerId, this.config.lostAfterSeconds, mode);
    if (outcome.claimed) return true;
    const row = outcome.job;
    if (!row || row.state === 'completed' || row.state === 'failed') return false;
    throw new Error(`job ${jobId} is still running in worker ${row.workerId}`);
  }

  /**
   * One shard task of a job (a training or a pass waits for it in its worker): claimed in its row, its samples
   * read, the shard trained, its result recorded. A failure counts as an attempt of the task (JOB_RETRY_LIMIT),
   * and pg-boss delivers it again, to whichever worker takes it; on the last attempt the task fails, and so
   * does its job. An artifact store out of reach is this worker's trouble, not the task's: the attempt does
   * not count, and this worker takes nothing for JOB_LOST_AFTER_SECONDS (pauseIntake), so another one does.
   */
  private async runShardTask(job: PgBoss.JobWithMetadata<ShardMessage>): Promise<void> {
    const { taskId, generation } = job.data;
    const clock = new PhaseClock();
    const claimed = await this.tasks.claim(taskId, generation, this.workerId, this.config.lostAfterSeconds);
    if (!('input' in claimed)) {
      const row = claimed.row;
      if (!row || row.superseded || row.generation !== generation || row.state === 'completed' || row.state === 'failed') return; // nothing left to do
      throw new Error(`shard task ${taskId} is still running in worker ${row.workerId}`);
    }
    const task = claimed.input as ShardTask;
    const where = `shard ${task.shard} of model ${task.modelId} version ${task.version}`;
    this.runningTasks.add(taskId);
    const progress = new ProgressWriter((fraction) => this.tasks.heartbeat(taskId, this.workerId, fraction));
    clock.lap('claim');
    try {
      const result = await this.shardTraining.run(task, (fraction) => progress.set(fraction, null), clock);
      await progress.close();
      if (!(await this.tasks.complete(taskId, this.workerId, result))) throw new Error(`shard task ${taskId} was handed to another worker meanwhile`);
      clock.lap('complete');
      const total = Object.values(clock.seconds).reduce((a, b) => a + b, 0);
      const phases = Object.entries(clock.seconds).map(([phase, s]) => `${phase} ${s.toFixed(2)}`).join(', ');
      this.logger.log(`${where} trained from slice ${result.fromSlice} in ${total.toFixed(1)} s (${phases})`);
    } catch (error) {
      await progress.close();
      const message = describeJobError(error);
      if (this.pauseIntake(error)) {
        await this.tasks.endAttempt(taskId, this.workerId, message, 'uncounted');
        this.logger.warn(`${where} handed back, its attempt not counted: another worker will take it (${message})`);
        throw error;
      }
      const [row] = await this.tasks.find([taskId]);
      const final = isPermanentJobError(error) || (row?.attempts ?? 0) > this.config.retryLimit;
      await this.tasks.endAttempt(taskId, this.workerId, message, final ? 'final' : 'retry');
      if (final) {
        this.logger.error(`${where} failed for good after ${row?.attempts} attempt(s): ${message}`);
        return;
      }
      this.logger.warn(`${where} will be retried: ${message}`);
      throw error;
    } finally {
      this.runningTasks.delete(taskId);
      // The tasks of a job are sent at once: look for the next now, not at the next poll (pg-boss waits out
      // JOB_POLL_SECONDS after a task shorter than that, a fixed cost per task the scale bench measured).
      this.wake(SHARD_JOB);
    }
  }

  /** A job's progress and heartbeat, written every second while it runs (also while a pass waits for its dataset). */
  private jobProgress(jobId: string): ProgressWriter {
    return new ProgressWriter((fraction, etaSeconds) => this.jobs.heartbeat(jobId, this.workerId, fraction, etaSeconds));
  }

  /** Sends the message of the dataset's waiting pass (made if none waits); returns its job id. */
  private async sendWaitingPass(datasetId: string): Promise<string> {
    const { jobId } = await this.jobs.findOrCreateWaitingPass(datasetId);
    await sendJob(this.boss, UNLEARN_JOB, { jobId, datasetId }, { id: jobId });
    return jobId;
  }

  /** Wakes pg-boss's worker of `queue` (of every queue for null) to fetch now instead of at its next poll. */
  private wake(queue: string | null): void {
    for (const [name, id] of this.bossWorkers) if (queue === null || queue === name) this.boss.notifyWorker(id);
  }
}

/** The message of a bias scan. */
interface BiasScanMessage {
  jobId: string;
  modelId: string;
  modelVersion: number;
}

/** The message of an unlearning pass; messages sent before passes were jobs have no jobId. */
interface UnlearnMessage {
  jobId?: string;
  datasetId: string;
}

/** Keeps the latest progress of a job or a shard task and writes it (with a heartbeat) every second. */
class ProgressWriter {
  private latest: { fraction: number; etaSeconds: number | null } = { fraction: 0, etaSeconds: null };
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly writeRow: (fraction: number, etaSeconds: number | null) => Promise<void>) {
    this.timer = setInterval(() => {
      this.writing = this.write().catch(() => undefined);
    }, PROGRESS_EVERY_MS);
  }

  /** A training job's progress from the engine's report (the ETA is the engine's, while it trains). */
  update(progress: Progress): void {
    this.set(modelDoneFraction(progress), isRetraining(progress) ? progress.etaSeconds : null);
  }

  /** The job's done fraction (it never goes back) and estimated seconds left. */
  set(fraction: number, etaSeconds: number | null): void {
    this.latest = { fraction: Math.max(this.latest.fraction, Math.min(1, fraction)), etaSeconds };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }

  /** Also the heartbeat of a pass this worker holds while it waits for its dataset (still `queued`). */
  private async write(): Promise<void> {
    await this.writeRow(this.latest.fraction, this.latest.etaSeconds);
  }
}

/**
 * Runs a job with V8's heap growing as a training's (fewer full collections; see holdHeapForTraining): a worker
 * in a process of its own keeps that setting anyway (worker.ts), the service's in-process worker only while
 * one of its jobs runs, so that the API's heap is V8's own the rest of the time.
 */
async function whileTraining<T>(run: () => Promise<T>): Promise<T> {
  const end = holdHeapForTraining();
  try {
    return await run();
  } finally {
    end();
  }
}
