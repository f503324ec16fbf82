import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes the key fields of the retirement entries (ENTRY_KEYS in entry-query.ts): VERSION_RETIRED by model
 * and version, CHECKPOINTS_DELETED by model, so that a retried unlearning pass finds what it logged already
 * with an index scan. Partial, and ending with the entry's index, like IndexEntryKeys1764216610000's.
 */
export class IndexRetirementKeys1764216710000 implements MigrationInterface {
  name = 'IndexRetirementKeys1764216710000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_retired_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('VERSION_RETIRED')`,
    );
    await q.query(
      `CREATE INDEX ledger_entries_checkpoints_deleted_idx ON ledger_entries ((event::jsonb ->> 'modelId'), idx)
       WHERE type IN ('CHECKPOINTS_DELETED')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_checkpoints_deleted_idx, ledger_entries_retired_version_idx`);
  }
}
