import { Inject, Injectable, Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { configureHeapForTraining, Progress } from '@lethe/unlearning';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { JOB_CONFIG, JobConfig } from '../jobs/job.config';
import { BIAS_SCAN_JOB, TRAIN_JOB, UNLEARN_JOB } from '../jobs/job.entity';
import { BiasScanRunner } from '../unlearning/bias-scan.runner';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { JobListener, sendJob } from '../jobs/job.notifier';
import { JobRepository } from '../jobs/job.repository';
import { ModelTrainingService } from '../models/model-training.service';
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
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger('Worker');
  private readonly running = new Set<string>();
  private reaper: NodeJS.Timeout | undefined;
  private stopping = false;
  /** pg-boss's worker of each queue, woken by the listener. */
  private readonly bossWorkers = new Map<string, string>();
  private readonly listener: JobListener;

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
  ) {
    configureHeapForTraining(); // this process trains: fewer full garbage collections (see the function)
    // A sent job wakes its queue's pg-boss worker at once; polling every JOB_POLL_SECONDS stays the fallback.
    this.listener = new JobListener((dataSource.options as { url: string }).url, (queue) => this.wake(queue));
  }

  async start(): Promise<void> {
    const work = { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: this.config.pollSeconds };
    this.bossWorkers.set(
      TRAIN_JOB,
      await this.boss.work<{ jobId: string; modelId: string }>(TRAIN_JOB, work, ([job]) =>
        this.runTraining(job as PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>),
      ),
    );
    this.bossWorkers.set(
      UNLEARN_JOB,
      await this.boss.work<UnlearnMessage>(UNLEARN_JOB, work, ([job]) => this.runUnlearning(job as PgBoss.JobWithMetadata<UnlearnMessage>)),
    );
    this.bossWorkers.set(
      BIAS_SCAN_JOB,
      await this.boss.work<BiasScanMessage>(BIAS_SCAN_JOB, work, ([job]) => this.runBiasScan(job as PgBoss.JobWithMetadata<BiasScanMessage>)),
    );
    await this.listener.start();
    // Retirements and deletions a crash (or a database from before retirement) left half done; a failure here
    // is logged, not fatal: the next start tries again, and passes keep serving forget requests meanwhile.
    await this.retirement.finishInterrupted().catch((e: unknown) => this.logger.warn(`finishing retirements at start: ${describeJobError(e)}`));
    await this.resendWaiting();
    await this.retryLost();
    this.reaper = setInterval(
      () => void this.retryLost().catch((e) => this.logger.warn(`looking for lost jobs: ${(e as Error).message}`)),
      (this.config.lostAfterSeconds * 1000) / 2,
    );
    this.logger.log(`worker ${this.workerId} takes jobs ${TRAIN_JOB} and ${UNLEARN_JOB}`);
  }

  /** Lets running jobs finish (up to JOB_STOP_TIMEOUT_SECONDS), then hands the others back to the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.reaper);
    await this.listener.stop();
    await this.boss.stop({ graceful: true, wait: true, timeout: this.config.stopTimeoutSeconds * 1000 });
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
    return lost.length;
  }

  private async runTraining(job: PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>): Promise<void> {
    const { jobId, modelId } = job.data;
    if (!(await this.take(jobId, 'run'))) return;
    this.running.add(jobId);
    const progress = new ProgressWriter(this.jobs, jobId, this.workerId);
    try {
      const result = await this.training.train(modelId, (p) => progress.update(p));
      await progress.close();
      await this.jobs.complete(jobId, result);
    } catch (error) {
      await progress.close();
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
    const progress = new ProgressWriter(this.jobs, jobId, this.workerId);
    const lastAttempt = job.retryCount >= job.retryLimit;
    try {
      const result = await this.unlearning.unlearnDataset(datasetId, {
        jobId,
        lastAttempt,
        clock,
        onProgress: (p) => progress.set(p.fraction, p.etaSeconds),
        onLocked: async () => {
          if (this.stopping) throw new Error('its worker is stopping');
          if (!(await this.jobs.start(jobId, this.workerId)))
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
      if (result.error === undefined) await this.jobs.complete(jobId, outcome);
      else {
        await this.jobs.fail(jobId, result.error, outcome);
        this.logger.error(`job ${jobId} (unlearning dataset ${datasetId}) failed: ${result.error}`);
      }
    } catch (error) {
      await progress.close();
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
    try {
      await this.jobs.complete(jobId, await this.biasScans.run(modelId, modelVersion));
    } catch (error) {
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

/** Keeps the latest progress of a job and writes it (with a heartbeat) every second. */
class ProgressWriter {
  private latest: { fraction: number; etaSeconds: number | null } = { fraction: 0, etaSeconds: null };
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly jobs: JobRepository, private readonly jobId: string, private readonly workerId: string) {
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
    await this.jobs.heartbeat(this.jobId, this.workerId, this.latest.fraction, this.latest.etaSeconds);
  }
}
