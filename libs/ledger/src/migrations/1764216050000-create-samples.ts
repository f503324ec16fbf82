import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sample data and salts live here, outside the log. Forgetting a sample shreds its row (data, salt,
 * identifiers set to NULL); the commitment stays, in the log and here, unlinkable to anyone.
 */
export class CreateSamples1764216050000 implements MigrationInterface {
  name = 'CreateSamples1764216050000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE samples (
        id bigserial PRIMARY KEY,
        dataset_id text NOT NULL,
        external_id text,
        subject_id text,
        features double precision[],
        label integer,
        salt bytea CHECK (salt IS NULL OR octet_length(salt) = 32),
        commitment text NOT NULL UNIQUE CHECK (commitment ~ '^[0-9a-f]{64}$'),
        ledger_index bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        shredded_at timestamptz,
        CHECK ((shredded_at IS NULL) = (salt IS NOT NULL AND features IS NOT NULL AND external_id IS NOT NULL))
      )`);
    await q.query(`CREATE UNIQUE INDEX samples_dataset_external_id ON samples (dataset_id, external_id) WHERE external_id IS NOT NULL`);
    await q.query(`CREATE INDEX samples_dataset_subject ON samples (dataset_id, subject_id) WHERE subject_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE samples`);
  }
}
