import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * EVIDENCE_RECORDED entries are looked up by model version (ENTRY_KEYS), like MODEL_PUBLISHED and
 * UNLEARN_COMPLETED in IndexEntryKeys1764216610000: a partial expression index of their own.
 */
export class IndexEvidenceKeys1764216810000 implements MigrationInterface {
  name = 'IndexEvidenceKeys1764216810000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_evidence_version_idx ON ledger_entries ((event::jsonb ->> 'modelId'), (event::jsonb ->> 'modelVersion'), idx)
       WHERE type IN ('EVIDENCE_RECORDED')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_evidence_version_idx`);
  }
}
