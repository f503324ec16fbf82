import { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys, stored as SHA-256 of the key (the key itself is shown once, at creation, and never stored). */
export class CreateApiKeys1764216300000 implements MigrationInterface {
  name = 'CreateApiKeys1764216300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        role text NOT NULL CHECK (role IN ('admin', 'ml', 'auditor')),
        key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE api_keys`);
  }
}
