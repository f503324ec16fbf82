import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retirement: a version that learned a forgotten sample is marked retired (nothing serves it from then on),
 * its VERSION_RETIRED entry logged, then its ONNX file deleted; checkpoints no live version needs are
 * decided, logged (CHECKPOINTS_DELETED), then deleted. Each step is recorded before the next, so a crash
 * between them is finished later and nothing is logged twice. `batch_commitments` keeps the ordered
 * commitments under each BATCH_LEARNED batch root, so a receipt can prove which versions learned a sample
 * after its data is gone.
 */
export class RetireVersions1764216700000 implements MigrationInterface {
  name = 'RetireVersions1764216700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE model_versions
        ADD COLUMN retired_at timestamptz,
        ADD COLUMN retired_by uuid[] NOT NULL DEFAULT '{}',
        -- the log's size when the retirement was decided: its VERSION_RETIRED entry is at or after it
        ADD COLUMN retire_logged_after bigint,
        ADD COLUMN retire_ledger_index bigint UNIQUE,
        ADD COLUMN onnx_deleted_at timestamptz,
        ADD CONSTRAINT model_versions_retired CHECK ((retired_at IS NULL) = (cardinality(retired_by) = 0 AND retire_logged_after IS NULL)),
        ADD CONSTRAINT model_versions_retire_logged CHECK (retire_ledger_index IS NULL OR retired_at IS NOT NULL),
        -- a file is deleted only once its retirement is in the log
        ADD CONSTRAINT model_versions_onnx_deleted CHECK (onnx_deleted_at IS NULL OR retire_ledger_index IS NOT NULL)`);
    await q.query(`CREATE INDEX model_versions_retired_by ON model_versions USING gin (retired_by)`);
    await q.query(`CREATE INDEX model_versions_retiring ON model_versions (model_id) WHERE retired_at IS NOT NULL AND onnx_deleted_at IS NULL`);
    // Which versions learned a sample, looked up from the sample.
    await q.query(`CREATE INDEX model_version_samples_sample ON model_version_samples (sample_id)`);
    await q.query(`
      CREATE TABLE checkpoint_deletions (
        checkpoint text PRIMARY KEY CHECK (checkpoint ~ '^[0-9a-f]{64}$'),
        model_id uuid NOT NULL REFERENCES models (id),
        forget_request_ids uuid[] NOT NULL CHECK (cardinality(forget_request_ids) > 0),
        -- the log's size when the deletion was decided: its CHECKPOINTS_DELETED entry is at or after it
        decided_after bigint NOT NULL,
        ledger_index bigint,
        deleted_at timestamptz,
        CHECK (deleted_at IS NULL OR ledger_index IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX checkpoint_deletions_pending ON checkpoint_deletions (model_id) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX checkpoint_deletions_requests ON checkpoint_deletions USING gin (forget_request_ids)`);
    await q.query(`
      CREATE TABLE batch_commitments (
        -- a BATCH_LEARNED entry, and the commitment's leaf position under its batch root
        ledger_index bigint NOT NULL,
        position integer NOT NULL CHECK (position >= 0),
        commitment text NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$'),
        PRIMARY KEY (ledger_index, position)
      )`);
    await q.query(`CREATE INDEX batch_commitments_commitment ON batch_commitments (commitment)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE batch_commitments, checkpoint_deletions`);
    await q.query(`DROP INDEX model_version_samples_sample`);
    await q.query(`
      ALTER TABLE model_versions DROP COLUMN retired_at, DROP COLUMN retired_by, DROP COLUMN retire_logged_after,
        DROP COLUMN retire_ledger_index, DROP COLUMN onnx_deleted_at`);
  }
}
