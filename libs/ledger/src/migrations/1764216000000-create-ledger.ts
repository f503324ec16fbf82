import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The append-only log. Triggers refuse UPDATE and DELETE on entries, nodes and checkpoints, so a bug in
 * the service cannot rewrite history (an operator with superuser rights still can; auditors catch that
 * against the chain).
 */
export class CreateLedger1764216000000 implements MigrationInterface {
  name = 'CreateLedger1764216000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE ledger_head (
        id smallint PRIMARY KEY CHECK (id = 1),
        tree_size bigint NOT NULL CHECK (tree_size >= 0),
        root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
        -- the right frontier (hashes of the perfect subtrees of the tree, biggest first), so that an
        -- appender reads what it needs with the lock, in one round trip
        frontier bytea[] NOT NULL
      )`);
    await q.query(
      `INSERT INTO ledger_head (id, tree_size, root_hash, frontier) VALUES (1, 0, sha256(''::bytea), '{}')`,
    );
    await q.query(`
      CREATE TABLE ledger_entries (
        idx bigint PRIMARY KEY CHECK (idx >= 0),
        leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
        type text NOT NULL,
        event text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ledger_entries_type_idx ON ledger_entries (type, idx)`);
    // Proofs read leaf hashes by index: a covering index answers them without touching the table.
    await q.query(`CREATE UNIQUE INDEX ledger_entries_leaf_idx ON ledger_entries (idx) INCLUDE (leaf_hash)`);
    await q.query(`
      CREATE TABLE ledger_nodes (
        level smallint NOT NULL CHECK (level >= 1 AND level < 64),
        idx bigint NOT NULL CHECK (idx >= 0),
        hash bytea NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx) INCLUDE (hash)
      )`);
    await q.query(`
      CREATE TABLE ledger_checkpoints (
        tree_size bigint PRIMARY KEY CHECK (tree_size > 0),
        root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'the ledger is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
      END $$`);
    for (const table of ['ledger_entries', 'ledger_nodes', 'ledger_checkpoints']) {
      await q.query(
        `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`,
      );
      await q.query(
        `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
         FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ledger_checkpoints, ledger_nodes, ledger_entries, ledger_head`);
    await q.query(`DROP FUNCTION ledger_refuse_change()`);
  }
}
