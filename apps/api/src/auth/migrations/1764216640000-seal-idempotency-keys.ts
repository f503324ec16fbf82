import { MigrationInterface, QueryRunner } from 'typeorm';
import { scrubDroppedData } from '@lethe/ledger';

/**
 * Idempotency rows without secrets or identifiers in clear. The old table kept the Idempotency-Key, an
 * unkeyed hash of the body and the whole first answer in clear (a new API key; every externalId with its
 * commitment): it is dropped (rows of the last day, retries of which then run anew) and its files removed
 * (VACUUM FULL of pg_statistic, CHECKPOINT). Rows are now found by a keyed hash of the Idempotency-Key, the
 * body is compared by a MAC under a key derived from it, and the answer is sealed under that key; an answer
 * that held a secret keeps only the rest (`replayable` false: a retry is a 409).
 */
export class SealIdempotencyKeys1764216640000 implements MigrationInterface {
  name = 'SealIdempotencyKeys1764216640000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    const [{ held }]: { held: boolean }[] = await q.query(
      `SELECT to_regclass('idempotency_keys') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'idempotency_keys'::regclass AND attname = 'response' AND atttypid = 'jsonb'::regtype) AS held`,
    );
    const [{ rows }]: { rows: boolean }[] = held ? await q.query(`SELECT EXISTS (SELECT 1 FROM idempotency_keys) AS rows`) : [{ rows: false }];
    await q.startTransaction();
    try {
      await q.query(`DROP TABLE IF EXISTS idempotency_keys`);
      await q.query(`
        CREATE TABLE idempotency_keys (
          scope text NOT NULL,
          -- lookupHash(['idempotencyKey', scope], Idempotency-Key)
          key_hash text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
          route text NOT NULL,
          -- MAC of the body's SHA-256 under the key derived from the Idempotency-Key; for a streamed (NDJSON)
          -- body known only once it was read, i.e. when the answer is stored
          request_mac text CHECK (request_mac ~ '^[0-9a-f]{64}$'),
          streamed boolean NOT NULL DEFAULT false,
          status integer,
          -- the first answer, sealed (AES-256-GCM) under the key derived from the Idempotency-Key
          response bytea,
          -- false: the answer held a secret, which was left out; a retry is a 409
          replayable boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (scope, key_hash),
          CHECK (request_mac IS NOT NULL OR (streamed AND status IS NULL))
        )`);
      await q.query(`CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)`);
      await q.commitTransaction();
    } catch (error) {
      await q.rollbackTransaction();
      throw error;
    }
    if (rows) await scrubDroppedData(q);
  }

  async down(): Promise<void> {
    throw new Error('the plaintext idempotency table is not brought back');
  }
}
