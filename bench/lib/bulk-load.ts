// Helpers for benchmarks that need a large log: a fresh database and a bulk load done inside PostgreSQL.
import { Client } from 'pg';
import { Ledger, openDatabase } from '@lethe/ledger';
import { rootNodes } from '@lethe/merkle';

/** (Re)creates database `name` on the server of `serverUrl`; returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Fills the log with `size` entries inside PostgreSQL (generate_series + sha256, level by level), the
 * same bytes the Ledger would write, so that proof reads can be measured at sizes that would take the
 * appender minutes to reach.
 */
export async function bulkLoad(url: string, size: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query(`SET session_replication_role = replica`);
  await client.query(`SET synchronous_commit = off`);
  await client.query(`SET maintenance_work_mem = '1GB'`);
  await client.query(`ALTER TABLE ledger_entries SET UNLOGGED`).catch(() => undefined);
  await client.query(`DROP INDEX IF EXISTS ledger_entries_type_idx`);
  await client.query(`DROP INDEX IF EXISTS ledger_entries_leaf_idx`);
  await client.query(`
    INSERT INTO ledger_entries (idx, leaf_hash, type, event)
    SELECT i, sha256('\\x00'::bytea || convert_to(e, 'UTF8')), 'DATASET_REGISTERED', e
      FROM (SELECT i, '{"classes":10,"datasetId":"bench-' || i || '","features":784,"name":"bench","type":"DATASET_REGISTERED","version":1}' AS e
              FROM generate_series(0, ${size - 1}) AS i) AS s`);
  // Each level from the one below in one ordered pass (lead() pairs a left child with its right
  // sibling): no join for the planner to get wrong on freshly loaded, unanalysed tables.
  await client.query(`
    INSERT INTO ledger_nodes (level, idx, hash)
    SELECT 1, idx / 2, sha256('\\x01'::bytea || leaf_hash || next)
      FROM (SELECT idx, leaf_hash, lead(leaf_hash) OVER (ORDER BY idx) AS next FROM ledger_entries) AS s
     WHERE idx % 2 = 0 AND next IS NOT NULL`);
  for (let level = 2; 2 ** level <= size; level++) {
    await client.query(`
      INSERT INTO ledger_nodes (level, idx, hash)
      SELECT ${level}, idx / 2, sha256('\\x01'::bytea || hash || next)
        FROM (SELECT idx, hash, lead(hash) OVER (ORDER BY idx) AS next FROM ledger_nodes WHERE level = ${level - 1}) AS s
       WHERE idx % 2 = 0 AND next IS NOT NULL`);
  }
  await client.query(`ALTER TABLE ledger_entries SET LOGGED`).catch(() => undefined);
  await client.query(`CREATE INDEX ledger_entries_type_idx ON ledger_entries (type, idx)`);
  await client.query(`CREATE UNIQUE INDEX ledger_entries_leaf_idx ON ledger_entries (idx) INCLUDE (leaf_hash)`);
  await client.query(`VACUUM ANALYZE ledger_entries`);
  await client.query(`VACUUM ANALYZE ledger_nodes`);
  await client.query(`CHECKPOINT`); // write the load out now, not during the measurements
  await client.end();
  // The head and one checkpoint, from the stored nodes, through the Ledger's own code.
  const dataSource = await openDatabase({ url, poolSize: 1 });
  await dataSource.query(`UPDATE ledger_head SET tree_size = $1 WHERE id = 1`, [String(size)]);
  const root = await new Ledger(dataSource).getRoot(size);
  await dataSource.query(`SET session_replication_role = replica`);
  const frontier: Buffer[] = [];
  for (const id of rootNodes(size)) {
    const [row] = id.level === 0
      ? await dataSource.query(`SELECT leaf_hash AS hash FROM ledger_entries WHERE idx = $1`, [String(id.index)])
      : await dataSource.query(`SELECT hash FROM ledger_nodes WHERE level = $1 AND idx = $2`, [id.level, String(id.index)]);
    frontier.push(row.hash);
  }
  await dataSource.query(`UPDATE ledger_head SET root_hash = $1, frontier = $2 WHERE id = 1`, [Buffer.from(root, 'hex'), frontier]);
  await dataSource.query(`INSERT INTO ledger_checkpoints (tree_size, root_hash) VALUES ($1, $2)`, [String(size), Buffer.from(root, 'hex')]);
  await dataSource.destroy();
}
