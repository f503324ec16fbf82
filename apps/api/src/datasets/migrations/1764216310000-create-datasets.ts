import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Datasets an ML team registered. A row is written before its DATASET_REGISTERED entry and points at it
 * once that is durable; a row without ledger_index (a crash in between) is not a dataset.
 */
export class CreateDatasets1764216310000 implements MigrationInterface {
  name = 'CreateDatasets1764216310000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE datasets (
        id uuid PRIMARY KEY,
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        features integer NOT NULL CHECK (features >= 1),
        classes integer NOT NULL CHECK (classes >= 2),
        ledger_index bigint UNIQUE,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE datasets`);
  }
}
