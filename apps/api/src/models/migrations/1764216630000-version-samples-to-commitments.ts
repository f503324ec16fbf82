import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The samples a version learned point at `sample_commitments` (public, never deleted), which replaced the
 * plaintext `samples` table (EncryptSamples1764216625000 dropped it and its foreign keys; ids were kept). On a
 * database created since, CreateModels1764216410000 made the table without a foreign key, and this adds it.
 */
export class VersionSamplesToCommitments1764216630000 implements MigrationInterface {
  name = 'VersionSamplesToCommitments1764216630000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE model_version_samples ADD CONSTRAINT model_version_samples_sample_id_fkey FOREIGN KEY (sample_id) REFERENCES sample_commitments (id)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_version_samples DROP CONSTRAINT model_version_samples_sample_id_fkey`);
  }
}
