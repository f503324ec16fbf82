import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The data lifecycle (issue 14): the version a model serves after a rollback (null: its latest), a version the
 * catastrophic-forgetting guard held (its UNLEARN_HELD entry and figures) and its release (VERSION_RELEASED), and a
 * forget request's extension (FORGET_EXTENDED: the new deadline and its reason).
 */
export class DataLifecycle1764217110000 implements MigrationInterface {
  name = 'DataLifecycle1764217110000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models ADD COLUMN current_version integer`);
    await q.query(`ALTER TABLE model_versions ADD COLUMN held jsonb, ADD COLUMN held_ledger_index bigint, ADD COLUMN released_ledger_index bigint`);
    await q.query(`ALTER TABLE forget_requests ADD COLUMN extended_deadline timestamptz, ADD COLUMN extension_reason text, ADD COLUMN extend_ledger_index bigint`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE forget_requests DROP COLUMN extended_deadline, DROP COLUMN extension_reason, DROP COLUMN extend_ledger_index`);
    await q.query(`ALTER TABLE model_versions DROP COLUMN held, DROP COLUMN held_ledger_index, DROP COLUMN released_ledger_index`);
    await q.query(`ALTER TABLE models DROP COLUMN current_version`);
  }
}
