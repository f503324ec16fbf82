import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Jobs as clients see them (GET /v1/jobs/:id). pg-boss (schema `pgboss`) holds the queue itself: who
 * takes a job, retries, expiry; this table holds what a job is, its state, progress and outcome. The
 * pg-boss job has the same id, so sending a queued job again is harmless.
 */
export class CreateJobs1764216400000 implements MigrationInterface {
  name = 'CreateJobs1764216400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE jobs (
        id uuid PRIMARY KEY,
        type text NOT NULL,
        state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'completed', 'failed')),
        payload jsonb NOT NULL,
        progress double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
        eta_seconds double precision,
        error text,
        result jsonb,
        attempts integer NOT NULL DEFAULT 0,
        worker_id text,
        heartbeat_at timestamptz,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX jobs_queued ON jobs (created_at) WHERE state IN ('queued', 'running')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE jobs`);
  }
}
