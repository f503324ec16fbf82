import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Unlearning passes as jobs (type `lethe.unlearn`, payload `{datasetId}`), so their progress can be
 * watched at GET /v1/jobs/:id. A dataset has at most one pass that waits and has never started (the
 * unique index): every forget request that arrives meanwhile joins it instead of queueing one more.
 * A pass that was started and is retried (attempts > 0) may wait beside it. Each forget request points at
 * the pass that serves it (`job_id`): the waiting pass while `received`, the pass that took it once
 * `unlearning`.
 */
export class CreateUnlearningPasses1764216520000 implements MigrationInterface {
  name = 'CreateUnlearningPasses1764216520000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE UNIQUE INDEX jobs_unlearn_waiting ON jobs ((payload->>'datasetId')) WHERE type = 'lethe.unlearn' AND state = 'queued' AND attempts = 0`,
    );
    await q.query(`ALTER TABLE forget_requests ADD COLUMN job_id uuid REFERENCES jobs (id)`);
    await q.query(`CREATE INDEX forget_requests_waiting ON forget_requests (dataset_id) WHERE state IN ('received', 'unlearning')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX forget_requests_waiting`);
    await q.query(`ALTER TABLE forget_requests DROP COLUMN job_id`);
    await q.query(`DROP INDEX jobs_unlearn_waiting`);
  }
}
