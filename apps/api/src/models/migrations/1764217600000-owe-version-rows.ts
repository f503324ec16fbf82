import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A version made by forgetting is served before the rows that describe it are written: the samples it learned
 * (model_version_samples) and the members of the batches it retrained (batch_commitments). Its row says what
 * is owed until it is written: `samples_pending`, and `batches_pending` (batchKey -> BATCH_LEARNED index), so
 * a pass, a starting worker or a receipt that finds them owed after a crash writes them without looking for
 * missing rows. Versions made by forgetting whose sample rows a crash left out before this migration are
 * marked here. Partial index: few rows are ever owed.
 */
export class OweVersionRows1764217600000 implements MigrationInterface {
  name = 'OweVersionRows1764217600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions ADD COLUMN samples_pending boolean NOT NULL DEFAULT false, ADD COLUMN batches_pending jsonb`);
    await q.query(
      `UPDATE model_versions v SET samples_pending = true
        WHERE v.unlearn_ledger_index IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM model_version_samples m WHERE m.model_id = v.model_id AND m.version = v.version)`,
    );
    await q.query(`CREATE INDEX model_versions_batches_pending ON model_versions (model_id, version) WHERE batches_pending IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX model_versions_batches_pending`);
    await q.query(`ALTER TABLE model_versions DROP COLUMN batches_pending, DROP COLUMN samples_pending`);
  }
}
