import { Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { Progress, UnlearningError } from '@lethe/unlearning';
import { UNLEARN_JOB } from '../forget-requests/forget-request.queue';
import { ModelTrainingService } from '../models/model-training.service';
import { ModelStore } from '../models/model.store';
import { UnlearningService } from '../unlearning/unlearning.service';
import { JobConfig } from './job.config';
import { JobEntity, TRAIN_JOB } from './job.entity';

/** Engine errors that a retry cannot fix (the request itself is wrong). */
const PERMANENT_CODES = new Set(['INVALID_SAMPLE', 'INVALID_CONFIG', 'INVALID_REQUEST', 'INSUFFICIENT_DATA', 'DUPLICATE_SAMPLE', 'UNKNOWN_SAMPLE']);
/** How often a running job's progress and heartbeat are written. */
const PROGRESS_EVERY_MS = 1000;

export interface JobWorkerOptions {
  dataSource: DataSource;
  ledger: Ledger;
  dataDir: string;
  config: JobConfig;
}

/**
 * Takes training and unlearning jobs from pg-boss; one per process by default, and any number of
 * processes may run on one database (`npm start` runs one, `npm run worker` more). A job whose worker
 * dies stops getting heartbeats and is retried elsewhere (or, at the latest, when pg-boss expires it);
 * `stop` lets running jobs finish for a while, then hands them back to the queue (pg-boss fails them,
 * which retries them).
 */
export class JobWorker {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger('Worker');
  private readonly training: ModelTrainingService;
  private readonly unlearning: UnlearningService;
  private readonly running = new Set<string>();
  private reaper: NodeJS.Timeout | undefined;

  constructor(
    private readonly boss: PgBoss,
    private readonly options: JobWorkerOptions,
  ) {
    const store = new ModelStore(options.dataSource, options.dataDir);
    this.training = new ModelTrainingService(options.dataSource, options.ledger, store, options.dataDir);
    this.unlearning = new UnlearningService(options.dataSource, options.ledger, new SampleVault(options.dataSource, options.ledger), store, options.dataDir);
  }

  async start(): Promise<void> {
    const work = { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: this.options.config.pollSeconds };
    await this.boss.work<{ jobId: string; modelId: string }>(TRAIN_JOB, work, ([job]) => this.runTraining(job as PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>));
    await this.boss.work<{ datasetId: string }>(UNLEARN_JOB, work, ([job]) => this.runUnlearning(job.data.datasetId));
    await this.resendWaiting();
    await this.retryLost();
    this.reaper = setInterval(() => void this.retryLost().catch((e) => this.logger.warn(`looking for lost jobs: ${(e as Error).message}`)), (this.options.config.lostAfterSeconds * 1000) / 2);
    this.logger.log(`worker ${this.workerId} takes jobs ${TRAIN_JOB} and ${UNLEARN_JOB}`);
  }

  /** Lets running jobs finish (up to JOB_STOP_TIMEOUT_SECONDS), then hands the others back to the queue. */
  async stop(): Promise<void> {
    clearInterval(this.reaper);
    await this.boss.stop({ graceful: true, wait: true, timeout: this.options.config.stopTimeoutSeconds * 1000 });
    if (this.running.size > 0) {
      await this.options.dataSource.query(
        `UPDATE jobs SET state = 'queued', worker_id = NULL, eta_seconds = NULL, error = 'its worker stopped; it will be retried', updated_at = now()
          WHERE id = ANY($1::uuid[]) AND state = 'running'`,
        [[...this.running]],
      );
    }
  }

  /**
   * Sends again what waits in the tables, in case a message was lost: queued training jobs (same id, so
   * an existing pg-boss job is not doubled) and forget requests still `received` or `unlearning`.
   */
  async resendWaiting(): Promise<void> {
    const jobs: { id: string; type: string; payload: Record<string, unknown> }[] = await this.options.dataSource.query(
      `SELECT id, type, payload FROM jobs WHERE state = 'queued' ORDER BY created_at`,
    );
    for (const job of jobs) await this.boss.send(job.type, { jobId: job.id, ...job.payload }, { id: job.id });
    const datasets: { dataset_id: string }[] = await this.options.dataSource.query(
      `SELECT DISTINCT dataset_id FROM forget_requests WHERE state IN ('received', 'unlearning') AND ledger_index IS NOT NULL`,
    );
    for (const d of datasets) await this.boss.send(UNLEARN_JOB, { datasetId: d.dataset_id });
    if (jobs.length + datasets.length > 0)
      this.logger.log(`sent again ${jobs.length} queued job(s) and the forget requests of ${datasets.length} dataset(s)`);
  }

  /**
   * Hands back to the queue the training jobs whose worker stopped writing heartbeats (it crashed, or
   * its machine did): pg-boss fails them, which retries them now rather than when they expire.
   */
  async retryLost(): Promise<number> {
    // TypeORM answers an UPDATE with [rows, rowCount].
    const [lost]: [{ id: string; type: string }[], number] = await this.options.dataSource.query(
      `UPDATE jobs SET state = 'queued', worker_id = NULL, eta_seconds = NULL, updated_at = now(),
              error = 'its worker stopped answering; it will be retried'
        WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1) RETURNING id, type`,
      [this.options.config.lostAfterSeconds],
    );
    for (const job of lost) await this.boss.fail(job.type, job.id, { message: 'its worker stopped answering' });
    if (lost.length > 0) this.logger.warn(`retrying ${lost.length} job(s) whose worker stopped answering: ${lost.map((j) => j.id).join(', ')}`);
    return lost.length;
  }

  private async runTraining(job: PgBoss.JobWithMetadata<{ jobId: string; modelId: string }>): Promise<void> {
    const { jobId, modelId } = job.data;
    if (this.running.has(jobId)) throw new Error(`job ${jobId} is still running in this worker`);
    // Claimed atomically: queued, or running in a worker whose heartbeats stopped.
    const [claimed]: [unknown[], number] = await this.options.dataSource.query(
      `UPDATE jobs SET state = 'running', worker_id = $2, heartbeat_at = now(), attempts = attempts + 1, progress = 0, eta_seconds = NULL, updated_at = now()
        WHERE id = $1 AND (state = 'queued' OR (state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $3))))
        RETURNING id`,
      [jobId, this.workerId, this.options.config.lostAfterSeconds],
    );
    if (claimed.length === 0) {
      const row = await this.options.dataSource.getRepository(JobEntity).findOneBy({ id: jobId });
      if (!row || row.state === 'completed' || row.state === 'failed') return;
      throw new Error(`job ${jobId} is still running in worker ${row.workerId}`);
    }
    this.running.add(jobId);
    const progress = new ProgressWriter(this.options.dataSource, jobId, this.workerId);
    try {
      const result = await this.training.train(modelId, (p) => progress.update(p));
      await progress.close();
      await this.options.dataSource.query(
        `UPDATE jobs SET state = 'completed', progress = 1, eta_seconds = NULL, error = NULL, result = $2, updated_at = now() WHERE id = $1`,
        [jobId, JSON.stringify(result)],
      );
    } catch (error) {
      await progress.close();
      const message = error instanceof Error ? error.message : String(error);
      const permanent = error instanceof UnlearningError && PERMANENT_CODES.has(error.code);
      const lastAttempt = job.retryCount >= job.retryLimit;
      if (permanent || lastAttempt) {
        await this.options.dataSource.query(`UPDATE jobs SET state = 'failed', eta_seconds = NULL, error = $2, updated_at = now() WHERE id = $1`, [jobId, message]);
        await this.training.markFailed(modelId, message);
        this.logger.error(`job ${jobId} (model ${modelId}) failed: ${message}`);
        return;
      }
      await this.options.dataSource.query(
        `UPDATE jobs SET state = 'queued', eta_seconds = NULL, error = $2, updated_at = now() WHERE id = $1 AND worker_id = $3 AND state = 'running'`,
        [jobId, message, this.workerId],
      );
      this.logger.warn(`job ${jobId} (model ${modelId}) will be retried: ${message}`);
      throw error;
    } finally {
      this.running.delete(jobId);
    }
  }

  private async runUnlearning(datasetId: string): Promise<void> {
    await this.unlearning.unlearnDataset(datasetId);
  }
}

/** Keeps the latest progress of a job and writes it (with a heartbeat) every second. */
class ProgressWriter {
  private latest: { fraction: number; etaSeconds: number | null } = { fraction: 0, etaSeconds: null };
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataSource: DataSource,
    private readonly jobId: string,
    private readonly workerId: string,
  ) {
    this.timer = setInterval(() => {
      this.writing = this.write().catch(() => undefined);
    }, PROGRESS_EVERY_MS);
  }

  /** Training steps are most of a job; publishing and evaluating the rest. */
  update(progress: Progress): void {
    const training = progress.phase === 'train' || progress.phase === 'unlearn';
    const fraction = training ? 0.9 * progress.fraction : 0.9 + 0.1 * progress.fraction;
    this.latest = { fraction: Math.max(this.latest.fraction, Math.min(1, fraction)), etaSeconds: training ? progress.etaSeconds : null };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }

  private async write(): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET progress = $3, eta_seconds = $4, heartbeat_at = now(), updated_at = now() WHERE id = $1 AND worker_id = $2 AND state = 'running'`,
      [this.jobId, this.workerId, this.latest.fraction, this.latest.etaSeconds],
    );
  }
}
