import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Models, their published versions, and which samples each version learned. A version row is written
 * once its MODEL_PUBLISHED entry is durable and points at it; `engine_state` holds what the unlearning
 * engine needs to forget from the version (shards, checkpoints, manifest), its ONNX file lives in
 * DATA_DIR/models.
 */
export class CreateModels1764216410000 implements MigrationInterface {
  name = 'CreateModels1764216410000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE models (
        id uuid PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES datasets (id),
        config jsonb NOT NULL,
        engine_config jsonb NOT NULL,
        state text NOT NULL DEFAULT 'training' CHECK (state IN ('training', 'ready', 'failed')),
        error text,
        job_id uuid NOT NULL REFERENCES jobs (id),
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX models_dataset ON models (dataset_id)`);
    await q.query(`
      CREATE TABLE model_versions (
        model_id uuid NOT NULL REFERENCES models (id),
        version integer NOT NULL CHECK (version >= 1),
        onnx_sha256 text NOT NULL CHECK (onnx_sha256 ~ '^[0-9a-f]{64}$'),
        manifest_hash text NOT NULL CHECK (manifest_hash ~ '^[0-9a-f]{64}$'),
        metrics jsonb NOT NULL,
        -- the MODEL_PUBLISHED entry, and for an unlearned version its UNLEARN_COMPLETED entry
        ledger_index bigint NOT NULL UNIQUE,
        unlearn_ledger_index bigint UNIQUE,
        reflects_forget_requests uuid[] NOT NULL DEFAULT '{}',
        evidence jsonb,
        engine_state jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model_id, version)
      )`);
    await q.query(`CREATE INDEX model_versions_requests ON model_versions USING gin (reflects_forget_requests)`);
    await q.query(`
      CREATE TABLE model_version_samples (
        model_id uuid NOT NULL,
        version integer NOT NULL,
        -- its foreign key (onto sample_commitments) is added by VersionSamplesToCommitments1764216630000: a
        -- database whose ledger migrations ran first has no samples table left by the time this runs
        sample_id bigint NOT NULL,
        PRIMARY KEY (model_id, version, sample_id),
        FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE model_version_samples, model_versions, models`);
  }
}
