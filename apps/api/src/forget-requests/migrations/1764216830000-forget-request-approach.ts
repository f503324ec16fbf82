import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How a forget request asked to be served: null for exact unlearning (every request before this column), or
 * {approach: 'approximate', algorithm, then} for approximate unlearning, followed by the exact pass unless
 * `then` is 'none'.
 */
export class ForgetRequestApproach1764216830000 implements MigrationInterface {
  name = 'ForgetRequestApproach1764216830000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE forget_requests ADD COLUMN approach jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE forget_requests DROP COLUMN approach`);
  }
}
