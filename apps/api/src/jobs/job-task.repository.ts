import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { uuidOf } from '../common/uuid';
import { TASK_CHANNEL } from './job.notifier';

export const TASK_STATES = ['queued', 'running', 'completed', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** A shard task as its job asks for it. */
export interface NewTask {
  modelId: string;
  version: number;
  shard: number;
  /** The engine's ShardTask, as JSON. */
  input: object;
  inputSha256: string;
}

/** A shard task's row. */
export interface TaskRow {
  id: string;
  jobId: string;
  modelId: string;
  version: number;
  shard: number;
  state: TaskState;
  generation: number;
  attempts: number;
  progress: number;
  workerId: string | null;
  seconds: number | null;
  error: string | null;
  result: unknown;
  superseded: boolean;
}

/** A shard of a published version and the worker that trained it (a shard task's), in how many seconds. */
export interface TrainedShard {
  version: number;
  shard: number;
  workerId: string;
  seconds: number | null;
}

interface RawRow {
  id: string;
  job_id: string;
  model_id: string;
  version: number;
  shard: number;
  state: TaskState;
  generation: number;
  attempts: number;
  progress: number;
  worker_id: string | null;
  seconds: number | null;
  error: string | null;
  result: unknown;
  superseded_at: Date | null;
}

/** `seconds`: of the attempt that completed, or so far for one that runs. */
const COLUMNS = `id, job_id, model_id, version, shard, state, generation, attempts, progress, worker_id,
  COALESCE(seconds, CASE WHEN state = 'running' THEN extract(epoch FROM now() - started_at) END)::float8 AS seconds, error, result, superseded_at`;

function toRow(r: RawRow): TaskRow {
  return {
    id: r.id,
    jobId: r.job_id,
    modelId: r.model_id,
    version: r.version,
    shard: r.shard,
    state: r.state,
    generation: r.generation,
    attempts: r.attempts,
    progress: r.progress,
    workerId: r.worker_id,
    seconds: r.seconds,
    error: r.error,
    result: r.result,
    superseded: r.superseded_at !== null,
  };
}

/** Wakes the job waiting for the task rows of the CTE `done` (TASK_CHANNEL, delivered when the change commits). */
const NOTIFY_JOB = `SELECT id, pg_notify('${TASK_CHANNEL}', job_id::text) FROM done`;

/** The pg-boss job of a task's generation (a failed task given another chance gets a new one). */
export function taskMessageId(task: { id: string; generation: number }): string {
  return task.generation === 0 ? task.id : uuidOf('lethe task', task.id, String(task.generation));
}

/**
 * The `job_tasks` table: the shard tasks of jobs, each queued -> running -> completed | failed (back to
 * queued for a retry), with who runs it (worker_id, heartbeat_at), its progress, what it gave back and how
 * long it took. pg-boss carries the messages; the dispatcher, the worker and the services decide the moves.
 */
@Injectable()
export class JobTaskRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * The tasks a job asks for now: each found by (job, model, version, shard, input's SHA-256), made when there
   * is none; earlier tasks of the same shards with another input are marked superseded. A task that failed
   * for good is given another chance (its job is retried): queued again under a new generation.
   */
  async ensure(jobId: string, tasks: NewTask[]): Promise<TaskRow[]> {
    if (tasks.length === 0) return [];
    return this.dataSource.transaction(async (manager) => {
      const ids = tasks.map((t) => uuidOf('lethe task', jobId, t.modelId, String(t.version), String(t.shard), t.inputSha256));
      await manager.query(
        `INSERT INTO job_tasks (id, job_id, model_id, version, shard, input_sha256, input)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::int[], $6::text[], $7::jsonb[]) ON CONFLICT (id) DO NOTHING`,
        [
          ids,
          tasks.map(() => jobId),
          tasks.map((t) => t.modelId),
          tasks.map((t) => t.version),
          tasks.map((t) => t.shard),
          tasks.map((t) => t.inputSha256),
          tasks.map((t) => JSON.stringify(t.input)),
        ],
      );
      await manager.query(
        `UPDATE job_tasks t SET superseded_at = now(), updated_at = now()
           FROM unnest($2::uuid[], $3::int[], $4::int[]) AS u(model_id, version, shard)
          WHERE t.job_id = $1 AND t.model_id = u.model_id AND t.version = u.version AND t.shard = u.shard
            AND t.id <> ALL($5::uuid[]) AND t.superseded_at IS NULL`,
        [jobId, tasks.map((t) => t.modelId), tasks.map((t) => t.version), tasks.map((t) => t.shard), ids],
      );
      await manager.query(
        `UPDATE job_tasks SET state = 'queued', generation = generation + 1, attempts = 0, progress = 0, worker_id = NULL, heartbeat_at = NULL, updated_at = now()
          WHERE id = ANY($1::uuid[]) AND state = 'failed'`,
        [ids],
      );
      const rows: RawRow[] = await manager.query(`SELECT ${COLUMNS} FROM job_tasks WHERE id = ANY($1::uuid[])`, [ids]);
      const byId = new Map(rows.map((r) => [r.id, toRow(r)]));
      return ids.map((id) => byId.get(id)!);
    });
  }

  async find(ids: string[]): Promise<TaskRow[]> {
    const rows: RawRow[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM job_tasks WHERE id = ANY($1::uuid[])`, [ids]);
    return rows.map(toRow);
  }

  /** A job's tasks that are not superseded, by model, version and shard. */
  async findByJob(jobId: string): Promise<TaskRow[]> {
    const rows: RawRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM job_tasks WHERE job_id = $1 AND superseded_at IS NULL ORDER BY created_at, model_id, version, shard`,
      [jobId],
    );
    return rows.map(toRow);
  }

  /**
   * Takes a task for `workerId`, starting an attempt: if it is queued, or running in a worker whose heartbeats
   * stopped for `lostAfterSeconds`, and neither superseded nor of an older generation than `generation`.
   * Returns its input, or undefined with the row as it is.
   */
  async claim(id: string, generation: number, workerId: string, lostAfterSeconds: number): Promise<{ input: unknown } | { row: TaskRow | undefined }> {
    const [claimed]: [{ input: unknown }[], number] = await this.dataSource.query(
      `UPDATE job_tasks SET state = 'running', attempts = attempts + 1, progress = 0, worker_id = $3, heartbeat_at = now(), started_at = now(), updated_at = now()
        WHERE id = $1 AND generation = $2 AND superseded_at IS NULL
          AND (state = 'queued' OR (state = 'running' AND heartbeat_at < now() - make_interval(secs => $4)))
        RETURNING input`,
      [id, generation, workerId, lostAfterSeconds],
    );
    if (claimed.length > 0) return { input: claimed[0].input };
    return { row: (await this.find([id]))[0] };
  }

  async heartbeat(id: string, workerId: string, progress: number): Promise<void> {
    await this.dataSource.query(
      `UPDATE job_tasks SET progress = $3, heartbeat_at = now(), updated_at = now() WHERE id = $1 AND worker_id = $2 AND state = 'running'`,
      [id, workerId, Math.min(1, Math.max(0, progress))],
    );
  }

  /** Records what a task gave back; false when `workerId` no longer held it (it was handed to another). */
  async complete(id: string, workerId: string, result: object): Promise<boolean> {
    const done: unknown[] = await this.dataSource.query(
      `WITH done AS (
         UPDATE job_tasks SET state = 'completed', progress = 1, result = $3, error = NULL, seconds = extract(epoch FROM now() - started_at), updated_at = now()
          WHERE id = $1 AND worker_id = $2 AND state = 'running' RETURNING id, job_id)
       ${NOTIFY_JOB}`,
      [id, workerId, JSON.stringify(result)],
    );
    return done.length > 0;
  }

  /**
   * Ends an attempt that failed: back to `queued` for a retry, or `failed` for good when `final`. An attempt
   * that did not count (the worker's artifact store was out of reach: the task itself may be fine) is taken
   * off its attempts.
   */
  async endAttempt(id: string, workerId: string, error: string, outcome: 'retry' | 'uncounted' | 'final'): Promise<void> {
    await this.dataSource.query(
      `WITH done AS (
         UPDATE job_tasks SET state = $4, error = $3, heartbeat_at = NULL, updated_at = now(),
                attempts = attempts - CASE WHEN $5 THEN 1 ELSE 0 END
          WHERE id = $1 AND worker_id = $2 AND state = 'running' RETURNING id, job_id)
       ${NOTIFY_JOB}`,
      [id, workerId, error.slice(0, 2000), outcome === 'final' ? 'failed' : 'queued', outcome === 'uncounted'],
    );
  }

  /** Hands back the tasks of `ids` that `workerId` still runs (it stops). */
  async handBack(ids: string[], workerId: string, error: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE job_tasks SET state = 'queued', error = $3, heartbeat_at = NULL, updated_at = now() WHERE id = ANY($1::uuid[]) AND worker_id = $2 AND state = 'running'`,
      [ids, workerId, error],
    );
  }

  /** Running tasks whose worker wrote no heartbeat for `lostAfterSeconds`: back to queued; returns them. */
  async handBackLost(lostAfterSeconds: number, error: string): Promise<TaskRow[]> {
    const [lost]: [RawRow[], number] = await this.dataSource.query(
      `UPDATE job_tasks SET state = 'queued', error = $2, heartbeat_at = NULL, updated_at = now()
        WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1) RETURNING ${COLUMNS}`,
      [lostAfterSeconds, error],
    );
    return lost.map(toRow);
  }

  /** A queued task under a new generation (its message was lost); returns its row, or undefined if it is not queued. */
  async renew(id: string): Promise<TaskRow | undefined> {
    const [renewed]: [RawRow[], number] = await this.dataSource.query(
      `UPDATE job_tasks SET generation = generation + 1, updated_at = now() WHERE id = $1 AND state = 'queued' RETURNING ${COLUMNS}`,
      [id],
    );
    return renewed.length > 0 ? toRow(renewed[0]) : undefined;
  }

  /**
   * Which worker trained which shard of each version of a model: its completed shard tasks whose result is the
   * shard the version published (the last checkpoint of its record is the version's; a shard its publisher
   * trained again itself, under its own runtime envelope, is not listed), the latest such task per shard.
   */
  async findTrainedShards(modelId: string): Promise<TrainedShard[]> {
    const rows: { version: number; shard: number; worker_id: string; seconds: number | null }[] = await this.dataSource.query(
      `SELECT DISTINCT ON (t.version, t.shard) t.version, t.shard, t.worker_id, t.seconds
         FROM job_tasks t JOIN model_versions v ON v.model_id = t.model_id AND v.version = t.version
        WHERE t.model_id = $1 AND t.state = 'completed' AND t.superseded_at IS NULL AND t.worker_id IS NOT NULL
          AND t.result->'record'->'slices'->-1->>'checkpoint' = v.engine_state->'shards'->t.shard->'slices'->-1->>'checkpoint'
        ORDER BY t.version, t.shard, t.updated_at DESC`,
      [modelId],
    );
    return rows.map((r) => ({ version: r.version, shard: r.shard, workerId: r.worker_id, seconds: r.seconds }));
  }

  /** Queued tasks that are not superseded, of jobs that still run: what a worker's start sends again. */
  async findWaiting(): Promise<TaskRow[]> {
    const rows: RawRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM job_tasks WHERE state = 'queued' AND superseded_at IS NULL
          AND job_id IN (SELECT id FROM jobs WHERE state IN ('queued', 'running'))`,
    );
    return rows.map(toRow);
  }
}
