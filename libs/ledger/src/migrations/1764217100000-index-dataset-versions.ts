import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * DATASET_VERSIONED entries are looked up by dataset (ENTRY_KEYS: the versions of a dataset, its latest): a partial
 * expression index of their own, like IndexEvidenceKeys1764216810000.
 */
export class IndexDatasetVersions1764217100000 implements MigrationInterface {
  name = 'IndexDatasetVersions1764217100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_dataset_version_idx ON ledger_entries ((event::jsonb ->> 'datasetId'), (event::jsonb ->> 'datasetVersion'), idx)
       WHERE type IN ('DATASET_VERSIONED')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_dataset_version_idx`);
  }
}
