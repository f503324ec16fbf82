import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Online learning appends slices: each sample of a version has the learn batch that added it (0: the model's first
 * training; b >= 1: the b-th learn, learned in slice R - 1 + b of its shard), which the engine's plan needs to give the
 * version back. Rows from before were all placed among the R slices: batch 0.
 */
export class VersionSampleBatches1764217700000 implements MigrationInterface {
  name = 'VersionSampleBatches1764217700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_version_samples ADD COLUMN batch integer NOT NULL DEFAULT 0 CHECK (batch >= 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_version_samples DROP COLUMN batch`);
  }
}
