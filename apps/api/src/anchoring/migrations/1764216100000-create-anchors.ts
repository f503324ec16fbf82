import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateAnchors1764216100000 implements MigrationInterface {
  name = 'CreateAnchors1764216100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE anchors (
        id bigserial PRIMARY KEY,
        chain_id text NOT NULL,
        -- hash of block 0: tells apart two chains with one chain id (a restarted local Hardhat node)
        genesis_hash text NOT NULL,
        contract text NOT NULL,
        tree_size bigint NOT NULL CHECK (tree_size > 0),
        old_size bigint NOT NULL CHECK (old_size >= 0 AND old_size < tree_size),
        root_hash text NOT NULL CHECK (root_hash ~ '^[0-9a-f]{64}$'),
        state text NOT NULL CHECK (state IN ('sending', 'sent', 'confirmed', 'failed', 'dropped')),
        tx_hashes text[] NOT NULL DEFAULT '{}',
        tx_hash text,
        nonce integer,
        block_number bigint,
        ledger_index bigint,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // A checkpoint is anchored at most once per contract, and one attempt at a time is in flight.
    await q.query(`CREATE UNIQUE INDEX anchors_confirmed_once ON anchors (chain_id, genesis_hash, contract, tree_size) WHERE state = 'confirmed'`);
    await q.query(`CREATE UNIQUE INDEX anchors_one_in_flight ON anchors (chain_id, genesis_hash, contract) WHERE state IN ('sending', 'sent')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE anchors`);
  }
}
