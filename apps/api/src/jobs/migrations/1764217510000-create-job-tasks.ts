import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The shard tasks of jobs: a training or an unlearning pass trains a version's shards one task (and one
 * pg-boss job, queue `lethe.shard`) each, on whichever workers take them. A task is its input (a ShardTask
 * of the engine: config, shard, slices to train, commitments of its samples, the publisher's runtime
 * envelope), identified by the job, model, version, shard and the input's SHA-256, so that a job retried with
 * the same input finds its finished tasks, and one retried with another (more requests joined) starts over.
 * `generation` counts the times a failed task was given another chance (its pg-boss job's id changes);
 * `superseded_at` marks a task whose job asked for another input since.
 */
export class CreateJobTasks1764217510000 implements MigrationInterface {
  name = 'CreateJobTasks1764217510000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE job_tasks (
        id uuid PRIMARY KEY,
        job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        model_id uuid NOT NULL,
        version integer NOT NULL,
        shard integer NOT NULL,
        input_sha256 text NOT NULL,
        input jsonb NOT NULL,
        state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'completed', 'failed')),
        generation integer NOT NULL DEFAULT 0,
        attempts integer NOT NULL DEFAULT 0,
        progress double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
        worker_id text,
        heartbeat_at timestamptz,
        started_at timestamptz,
        seconds double precision,
        error text,
        result jsonb,
        superseded_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX job_tasks_job ON job_tasks (job_id, model_id, version, shard)`);
    await q.query(`CREATE INDEX job_tasks_active ON job_tasks (heartbeat_at) WHERE state IN ('queued', 'running')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE job_tasks`);
  }
}
