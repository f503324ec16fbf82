import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Answers to POSTs sent with an Idempotency-Key, per caller (API key id, or "public"): a retry with the
 * same key and body gets the first answer; the same key with another body or route is a 409.
 */
export class CreateIdempotencyKeys1764216330000 implements MigrationInterface {
  name = 'CreateIdempotencyKeys1764216330000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE idempotency_keys (
        scope text NOT NULL,
        key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
        route text NOT NULL,
        -- SHA-256 of the body: of its canonical JSON, or of its bytes for a streamed (NDJSON) body, whose
        -- hash is known only once it was read, i.e. when the answer is stored
        request_hash text CHECK (request_hash ~ '^[0-9a-f]{64}$'),
        streamed boolean NOT NULL DEFAULT false,
        status integer,
        response jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, key),
        CHECK (request_hash IS NOT NULL OR (streamed AND status IS NULL))
      )`);
    await q.query(`CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_keys`);
  }
}
