import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A version made by forgetting is served as soon as it is published; its evidence is measured afterwards and
 * logged as EVIDENCE_RECORDED, whose entry this column points at (null while the evidence is pending, and for
 * versions whose UNLEARN_COMPLETED carries its own evidence).
 */
export class RecordEvidenceLater1764216800000 implements MigrationInterface {
  name = 'RecordEvidenceLater1764216800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions ADD COLUMN evidence_ledger_index bigint UNIQUE`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions DROP COLUMN evidence_ledger_index`);
  }
}
