import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { JobEntity, JobType, UNLEARN_JOB } from './job.entity';

/** How often to look again when the waiting pass was taken by a worker between our insert and our read. */
const FIND_ATTEMPTS = 5;

/** What a job that starts an attempt gets: `running`, one more attempt, progress from 0. */
const STARTED = `state = 'running', attempts = attempts + 1, progress = 0, eta_seconds = NULL`;

/** Back to `queued`, held by no worker; `error` (a parameter) says why, for a job that was running. */
const handedBack = (error: string) =>
  `state = 'queued', worker_id = NULL, eta_seconds = NULL, updated_at = now(),
   error = CASE WHEN state = 'running' THEN ${error}::text ELSE error END`;

/** A job `claim` did not take: the row as it is (null when there is none). */
export type ClaimOutcome = { claimed: true } | { claimed: false; job: JobEntity | null };

/**
 * The `jobs` table: what a job is, its state (queued -> running -> completed | failed, back to queued for a
 * retry), who runs it (worker_id, heartbeat_at), its progress and outcome. pg-boss holds the queue itself
 * (the same id); the worker and the services decide when each move happens.
 */
@Injectable()
export class JobRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Stores a queued job in `manager`'s transaction. */
  async insert(manager: EntityManager, id: string, type: JobType, payload: Record<string, unknown>, createdBy: string | null): Promise<void> {
    await manager.query(`INSERT INTO jobs (id, type, state, payload, created_by) VALUES ($1, $2, 'queued', $3, $4)`, [
      id,
      type,
      JSON.stringify(payload),
      createdBy,
    ]);
  }

  findById(id: string): Promise<JobEntity | null> {
    return this.dataSource.getRepository(JobEntity).findOneBy({ id });
  }

  /** Queued jobs, oldest first. */
  findQueued(): Promise<JobEntity[]> {
    return this.dataSource.getRepository(JobEntity).find({ where: { state: 'queued' }, order: { createdAt: 'ASC' } });
  }

  /**
   * The dataset's waiting unlearning pass (state `queued`, never started), created when it has none. At most
   * one such row per dataset (a unique index), so every request that arrives while one waits joins it. In
   * `manager`'s transaction when given (each statement still sees what committed before it: READ COMMITTED).
   */
  async findOrCreateWaitingPass(datasetId: string, createdBy: string | null = null, manager: EntityManager = this.dataSource.manager): Promise<{ jobId: string }> {
    for (let attempt = 0; attempt < FIND_ATTEMPTS; attempt++) {
      const inserted: { id: string }[] = await manager.query(
        `INSERT INTO jobs (id, type, state, payload, created_by) VALUES ($1, $2, 'queued', $3, $4) ON CONFLICT DO NOTHING RETURNING id`,
        [randomUUID(), UNLEARN_JOB, JSON.stringify({ datasetId }), createdBy],
      );
      if (inserted.length === 1) return { jobId: inserted[0].id };
      // FOR SHARE: inside a transaction, the pass cannot start until that commits (a worker's start updates its row).
      const waiting: { id: string }[] = await manager.query(
        `SELECT id FROM jobs WHERE type = $1 AND state = 'queued' AND attempts = 0 AND payload->>'datasetId' = $2 FOR SHARE`,
        [UNLEARN_JOB, datasetId],
      );
      if (waiting.length === 1) return { jobId: waiting[0].id };
    }
    throw new Error(`dataset ${datasetId}: its waiting unlearning pass kept being taken; retry`);
  }

  /**
   * Takes a job for `workerId`, atomically, if it is queued or running in a worker whose heartbeats stopped
   * for `lostAfterSeconds`. `run` starts an attempt (`running`); `hold` only marks it as this worker's,
   * still `queued` (an unlearning pass waiting for its dataset), until `start`.
   */
  async claim(jobId: string, workerId: string, lostAfterSeconds: number, mode: 'run' | 'hold'): Promise<ClaimOutcome> {
    // TypeORM answers an UPDATE with [rows, rowCount].
    const [claimed]: [unknown[], number] = await this.dataSource.query(
      `UPDATE jobs SET ${mode === 'run' ? `${STARTED}, ` : ''}worker_id = $2, heartbeat_at = now(), updated_at = now()
        WHERE id = $1 AND (state = 'queued' OR (state = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $3))))
        RETURNING id`,
      [jobId, workerId, lostAfterSeconds],
    );
    return claimed.length > 0 ? { claimed: true } : { claimed: false, job: await this.findById(jobId) };
  }

  /** Starts an attempt of a job `workerId` holds (in `manager`'s transaction when given); false when it no longer holds it. */
  async start(jobId: string, workerId: string, manager: EntityManager = this.dataSource.manager): Promise<boolean> {
    const [started]: [unknown[], number] = await manager.query(
      `UPDATE jobs SET ${STARTED}, heartbeat_at = now(), updated_at = now()
        WHERE id = $1 AND state IN ('queued', 'running') AND worker_id = $2 RETURNING id`,
      [jobId, workerId],
    );
    return started.length > 0;
  }

  /** A heartbeat of a job `workerId` holds, with its progress (kept only while it runs). */
  async heartbeat(jobId: string, workerId: string, fraction: number, etaSeconds: number | null): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET progress = CASE WHEN state = 'running' THEN $3::float8 ELSE progress END, eta_seconds = CASE WHEN state = 'running' THEN $4::float8 END,
              heartbeat_at = now(), updated_at = now()
        WHERE id = $1 AND worker_id = $2 AND state IN ('queued', 'running')`,
      [jobId, workerId, fraction, etaSeconds],
    );
  }

  async complete(jobId: string, result: object): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET state = 'completed', progress = 1, eta_seconds = NULL, error = NULL, result = $2, updated_at = now() WHERE id = $1`,
      [jobId, JSON.stringify(result)],
    );
  }

  /** Fails a job that has not finished (no retry follows), with what it did produce, if anything. */
  async fail(jobId: string, error: string, result: object | null = null): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET state = 'failed', worker_id = NULL, eta_seconds = NULL, error = $2, result = COALESCE($3::jsonb, result), updated_at = now()
        WHERE id = $1 AND state IN ('queued', 'running')`,
      [jobId, error, result === null ? null : JSON.stringify(result)],
    );
  }

  /** Puts a job `workerId` holds back to `queued` for a retry, saying why its attempt failed. */
  async requeue(jobId: string, workerId: string, error: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET state = 'queued', worker_id = NULL, eta_seconds = NULL, error = $3, updated_at = now()
        WHERE id = $1 AND worker_id = $2 AND state IN ('queued', 'running')`,
      [jobId, workerId, error],
    );
  }

  /** Hands back to the queue the jobs of `jobIds` that `workerId` still holds (it stops). */
  async handBack(jobIds: string[], workerId: string, error: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE jobs SET ${handedBack('$3')} WHERE id = ANY($1::uuid[]) AND state IN ('queued', 'running') AND worker_id = $2`,
      [jobIds, workerId, error],
    );
  }

  /**
   * Queued jobs no worker holds, unchanged for `lostAfterSeconds`: a worker takes (claims) a job as soon as
   * pg-boss delivers it, so one of these whose pg-boss job is active was delivered to a worker that died before
   * taking it.
   */
  async findUnheldQueued(lostAfterSeconds: number): Promise<{ id: string; type: JobType }[]> {
    return this.dataSource.query(
      `SELECT id, type FROM jobs WHERE state = 'queued' AND worker_id IS NULL AND updated_at < now() - make_interval(secs => $1) ORDER BY created_at`,
      [lostAfterSeconds],
    );
  }

  /**
   * Hands back to the queue the jobs whose worker wrote no heartbeat for `lostAfterSeconds`: running ones,
   * and queued ones a worker held; returns them.
   */
  async handBackLost(lostAfterSeconds: number, error: string): Promise<{ id: string; type: JobType }[]> {
    const [lost]: [{ id: string; type: JobType }[], number] = await this.dataSource.query(
      `UPDATE jobs SET ${handedBack('$2')}
        WHERE (state = 'running' OR (state = 'queued' AND worker_id IS NOT NULL))
          AND heartbeat_at < now() - make_interval(secs => $1) RETURNING id, type`,
      [lostAfterSeconds, error],
    );
    return lost;
  }
}
