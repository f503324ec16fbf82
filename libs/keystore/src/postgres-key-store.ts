import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Pool, PoolClient } from 'pg';
import { describePostgresUrl } from '@lethe/postgres';
import { destroyFile } from './durable-file';
import { KeyStoreError } from './errors';
import { checkKeyId } from './key-id';
import { CreatedKey, DestroyKeyResult, KeyStore, KeyStoreStats } from './key-store';
import { createPageId, pageIdOf, pageKeyId, pageSlotOf } from './key-page';
import { DATA_KEY_FILE_BYTES, DATA_KEY_SUFFIX, checkKeyCount, isZeroed, keyExists, keyNotFound, makeSlots, unwrapDataKey, wrapDataKey } from './file-key-store';
import { MASTER_KEY_VARIABLE, SubKeys, deriveSubKeys, parseMasterKey } from './master-key';
import { KEY_BYTES } from './primitives';

/**
 * Slots per row of `key_pages`: 64 wrapped keys (3,904 bytes) stay in the row itself (storage PLAIN, never
 * TOASTed), so destroying one key rewrites one small row, not a whole file-sized page.
 */
export const KEYS_PER_ROW = 64;
/** Rows written per INSERT statement by createKeys. */
const ROWS_PER_INSERT = 100;
/** The advisory lock under which the tables are made and the key check is written (two workers may start at once). */
const SCHEMA_LOCK = 0x6c6b7331; // 'lks1'

export interface PostgresKeyStoreOptions {
  /** postgres://…: the service's DATABASE_URL (every worker of the deployment reaches it). */
  url: string;
  /**
   * The master key as given (LETHE_MASTER_KEY: 64 hex characters or the base64 of 32 bytes): every process
   * of the deployment gets the same one, as a secret beside the database password. Never stored here.
   */
  masterKey: string;
  /** Where the master key came from, for error messages (default LETHE_MASTER_KEY). */
  masterKeySource?: string;
  /** Connections (default 2). */
  poolSize?: number;
}

interface PageRow {
  page_id: string;
  chunk: number;
  slots: Buffer;
}

/**
 * Data keys in PostgreSQL (the default when DATABASE_URL is set), so that a worker on another machine opens
 * the sealed samples with DATABASE_URL and LETHE_MASTER_KEY alone. Same wrapping as FileKeyStore (AES-256-GCM
 * under the wrapping key derived from the master key, the key id as associated data): the database holds
 * wrapped keys only, useless without the master key, which it never sees.
 *
 * Layout: `key_pages (page_id, chunk, slots)`. A key page of createKeys is rows of KEYS_PER_ROW slots (row
 * `chunk` holds slots chunk·64 … chunk·64+63); a key of createKey is a row of its own (page_id = its 64-hex
 * id, chunk 0, one slot). `key_store_check` holds the key check, so a wrong master key is refused before
 * anything is written.
 *
 * Destroying keys: their slots are overwritten with zeros by one UPDATE per row (one transaction, committed
 * durably before it returns), then `VACUUM FULL key_pages` (once per erasure pass, `inErasurePass`) rewrites the table without the dead row versions
 * that still held the wrapped bytes. What remains (README, "Key store modes"): the WAL, until its segments
 * are recycled, holds the rows as they were (still wrapped under the master key), and so do base backups and
 * WAL archives; the old table file's blocks go back to the file system unwritten (PostgreSQL truncates and
 * unlinks it: no overwrite in place, unlike FileKeyStore's zeros and fdatasync); a dead row version that a
 * transaction still open when the key was destroyed may see is copied into the new file, and goes at the next
 * destroy's rewrite. A row whose slots are all zero is kept
 * (zeros): a key page imported again from files left by a crash (importFiles) can then never bring a key back.
 */
export class PostgresKeyStore implements KeyStore {
  readonly description: string;
  readonly #wrappingKey: Buffer;
  readonly #lookupKey: Buffer;
  /** The erasure pass (inErasurePass) a destroyKeys call runs in, if any: whether it destroyed a key. */
  readonly #pass = new AsyncLocalStorage<{ destroyed: boolean }>();

  private constructor(
    private readonly pool: Pool,
    description: string,
    subKeys: SubKeys,
  ) {
    this.description = description;
    this.#wrappingKey = subKeys.wrappingKey;
    this.#lookupKey = subKeys.lookupKey;
  }

  /** Opens the key store (at first use: makes its tables and writes its key check); a wrong master key is refused, nothing changed. */
  static async open(options: PostgresKeyStoreOptions): Promise<PostgresKeyStore> {
    const source = options.masterKeySource ?? MASTER_KEY_VARIABLE;
    const subKeys = deriveSubKeys(parseMasterKey(options.masterKey, { variable: MASTER_KEY_VARIABLE }));
    const description = describePostgresUrl(options.url);
    const pool = new Pool({ connectionString: options.url, max: options.poolSize ?? 2 });
    pool.on('error', () => undefined); // an idle connection dropped by the server: the next query reconnects
    try {
      await inTransaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
        await client.query(`CREATE TABLE IF NOT EXISTS key_store_check (id smallint PRIMARY KEY CHECK (id = 1), key_check bytea NOT NULL)`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS key_pages (
            page_id text NOT NULL CHECK (page_id ~ '^[0-9a-f]{56}([0-9a-f]{8})?$'),
            chunk integer NOT NULL CHECK (chunk >= 0),
            slots bytea NOT NULL,
            PRIMARY KEY (page_id, chunk)
          )`);
        await client.query(`ALTER TABLE key_pages ALTER COLUMN slots SET STORAGE PLAIN`);
        const { rows } = await client.query<{ key_check: Buffer }>('SELECT key_check FROM key_store_check WHERE id = 1');
        if (rows.length === 0) {
          await client.query('INSERT INTO key_store_check (id, key_check) VALUES (1, $1)', [subKeys.keyCheck]);
        } else if (!timingSafeEqual(rows[0].key_check, subKeys.keyCheck)) {
          throw new KeyStoreError(
            'WRONG_MASTER_KEY',
            `${source} is the wrong master key for the key store in ${description}: it does not match its key check, so its keys were wrapped under another one; nothing was changed`,
            { variable: MASTER_KEY_VARIABLE },
          );
        }
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresKeyStore(pool, description, subKeys);
  }

  /** Whether the database holds a key store already (its key check is written), without changing anything. */
  static async isInitialized(url: string): Promise<boolean> {
    const pool = new Pool({ connectionString: url, max: 1 });
    try {
      const { rows } = await pool.query<{ found: boolean }>(
        `SELECT to_regclass('key_store_check') IS NOT NULL AS found`,
      );
      if (!rows[0].found) return false;
      return (await pool.query('SELECT 1 FROM key_store_check WHERE id = 1')).rows.length > 0;
    } finally {
      await pool.end();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async createKey(keyId: string): Promise<Buffer> {
    checkKeyId(keyId);
    if (await this.hasKey(keyId)) throw keyExists(keyId); // e.g. a key page's id
    const dataKey = randomBytes(KEY_BYTES);
    const { rowCount } = await this.pool.query('INSERT INTO key_pages (page_id, chunk, slots) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING', [
      keyId,
      wrapDataKey(this.#wrappingKey, keyId, dataKey),
    ]);
    if (rowCount !== 1) {
      dataKey.fill(0);
      throw keyExists(keyId);
    }
    return dataKey;
  }

  /** `count` keys in fresh key pages (ids as FileKeyStore's), KEYS_PER_ROW a row, all in one transaction. */
  async createKeys(count: number): Promise<CreatedKey[]> {
    checkKeyCount(count);
    if (count === 0) return [];
    const pageId = createPageId(); // a page holds any number of rows: one page for the whole call
    const created: CreatedKey[] = [];
    const rows: [string, number, Buffer][] = [];
    for (let start = 0; start < count; start += KEYS_PER_ROW) {
      const { slots, keys } = makeSlots(this.#wrappingKey, pageId, start, Math.min(KEYS_PER_ROW, count - start));
      created.push(...keys);
      rows.push([pageId, start / KEYS_PER_ROW, slots]);
    }
    await inTransaction(this.pool, async (client) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await insertRows(client, rows.slice(i, i + ROWS_PER_INSERT));
    });
    return created;
  }

  async getKey(keyId: string): Promise<Buffer> {
    const key = (await this.readKeys([keyId])).get(keyId);
    if (key === undefined) throw keyNotFound(keyId);
    return key;
  }

  async getKeys(keyIds: readonly string[]): Promise<Map<string, Buffer>> {
    return this.readKeys(keyIds);
  }

  async hasKey(keyId: string): Promise<boolean> {
    return (await this.findWrapped([keyId])).has(keyId);
  }

  /** destroyKeys within `run` leave the table's rewrite to its end: one VACUUM FULL for the pass (see KeyStore). */
  async inErasurePass<T>(run: () => Promise<T>): Promise<T> {
    if (this.#pass.getStore()) return run(); // within a pass already: its end rewrites
    const pass = { destroyed: false };
    try {
      return await this.#pass.run(pass, run);
    } finally {
      if (pass.destroyed) await this.rewriteTable();
    }
  }

  /**
   * VACUUM FULL, not plain VACUUM: a plain one frees the dead row versions, but their bytes stay in the freed
   * space of the table's pages until PostgreSQL reuses it (the erasure test found them there); FULL writes the
   * live rows into a new file and PostgreSQL truncates and unlinks the old one. The table is small (61 bytes a
   * key), so the rewrite takes milliseconds; key reads wait for it meanwhile.
   */
  private async rewriteTable(): Promise<void> {
    await this.pool.query('VACUUM FULL key_pages');
  }

  async destroyKey(keyId: string): Promise<DestroyKeyResult> {
    return (await this.destroyKeys([keyId]))[0];
  }

  /**
   * Overwrites the keys' slots with zeros (one transaction: durable once it returns), then VACUUMs key_pages
   * so that the row versions that held them are removed, not only dead (within inErasurePass: at its end).
   */
  async destroyKeys(keyIds: readonly string[]): Promise<DestroyKeyResult[]> {
    for (const keyId of keyIds) checkKeyId(keyId);
    const destroyed = new Set<string>();
    await inTransaction(this.pool, async (client) => {
      const rows = await selectRows(client, keyIds, 'FOR UPDATE');
      for (const row of rows) {
        const before = Buffer.from(row.slots);
        for (const keyId of new Set(keyIds)) {
          const at = slotOffset(row, keyId);
          if (at === undefined || at + DATA_KEY_FILE_BYTES > row.slots.length) continue;
          const bytes = row.slots.subarray(at, at + DATA_KEY_FILE_BYTES);
          if (isZeroed(bytes)) continue;
          bytes.fill(0);
          destroyed.add(keyId);
        }
        if (!before.equals(row.slots)) await client.query('UPDATE key_pages SET slots = $3 WHERE page_id = $1 AND chunk = $2', [row.page_id, row.chunk, row.slots]);
        before.fill(0);
      }
    });
    if (destroyed.size > 0) {
      const pass = this.#pass.getStore();
      if (pass) pass.destroyed = true;
      else await this.rewriteTable();
    }
    return keyIds.map((keyId) => ({ keyId, status: destroyed.has(keyId) ? 'destroyed' : 'absent' }));
  }

  async *listKeys(): AsyncIterable<string> {
    let after: [string, number] = ['', -1];
    for (;;) {
      const { rows } = await this.pool.query<PageRow>(
        'SELECT page_id, chunk, slots FROM key_pages WHERE (page_id, chunk) > ($1, $2) ORDER BY page_id, chunk LIMIT 500',
        after,
      );
      if (rows.length === 0) return;
      for (const row of rows) {
        for (let i = 0; (i + 1) * DATA_KEY_FILE_BYTES <= row.slots.length; i++) {
          if (isZeroed(row.slots.subarray(i * DATA_KEY_FILE_BYTES, (i + 1) * DATA_KEY_FILE_BYTES))) continue;
          yield row.page_id.length === 64 ? row.page_id : pageKeyId(row.page_id, row.chunk * KEYS_PER_ROW + i);
        }
      }
      const last = rows[rows.length - 1];
      after = [last.page_id, last.chunk];
    }
  }

  async stats(): Promise<KeyStoreStats> {
    let keys = 0;
    for await (const keyId of this.listKeys()) {
      void keyId;
      keys++;
    }
    const { rows } = await this.pool.query<{ bytes: string }>(`SELECT pg_total_relation_size('key_pages')::text AS bytes`);
    return { keys, bytes: keys * DATA_KEY_FILE_BYTES, allocatedBytes: Number(rows[0].bytes) };
  }

  async getLookupKey(): Promise<Buffer> {
    return Buffer.from(this.#lookupKey);
  }

  /**
   * Moves the keys of a FileKeyStore directory (DATA_DIR/keys, wrapped under this same master key) in: its
   * key pages and `.dek` files as rows (the very wrapped bytes: a key's id is its associated data, so they
   * unwrap here as there), one transaction, then each file destroyed as FileKeyStore destroys it (zeros,
   * sync, unlink, sync of the directory). A crash between the two leaves the files, and the next start
   * imports them again: rows present are kept as they are (a key destroyed meanwhile stays destroyed).
   * master.key and master.check stay. Returns how many keys came in.
   */
  async importFiles(dir: string): Promise<number> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
    const rows: [string, number, Buffer][] = [];
    const files: string[] = [];
    let keys = 0;
    for (const name of names) {
      const bytes = await fs.readFile(join(dir, name)).catch(() => undefined);
      if (bytes === undefined) continue;
      const pageId = pageIdOf(name);
      const single = name.endsWith(DATA_KEY_SUFFIX) ? name.slice(0, -DATA_KEY_SUFFIX.length) : undefined;
      if (pageId !== undefined) {
        const perRow = KEYS_PER_ROW * DATA_KEY_FILE_BYTES;
        for (let chunk = 0; chunk * perRow < bytes.length; chunk++) {
          const slots = bytes.subarray(chunk * perRow, Math.min(bytes.length, (chunk + 1) * perRow));
          if (isZeroed(slots)) continue;
          this.checkUnwraps(pageKeyId(pageId, chunk * KEYS_PER_ROW), slots, join(dir, name));
          rows.push([pageId, chunk, Buffer.from(slots)]);
          for (let i = 0; i * DATA_KEY_FILE_BYTES < slots.length; i++) if (!isZeroed(slots.subarray(i * DATA_KEY_FILE_BYTES, (i + 1) * DATA_KEY_FILE_BYTES))) keys++;
        }
      } else if (single !== undefined && /^[0-9a-f]{64}$/.test(single)) {
        if (!isZeroed(bytes)) {
          unwrapDataKey(this.#wrappingKey, single, bytes, join(dir, name)).fill(0); // the same master key, or nothing moves
          rows.push([single, 0, Buffer.from(bytes)]);
          keys++;
        }
      } else continue;
      files.push(name);
    }
    if (files.length === 0) return 0;
    await inTransaction(this.pool, async (client) => {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await insertRows(client, rows.slice(i, i + ROWS_PER_INSERT));
    });
    for (const name of files) await destroyFile(dir, name);
    return keys;
  }

  /** The first key of a page's slots must unwrap here: keys wrapped under another master key are not moved. */
  private checkUnwraps(firstKeyId: string, slots: Buffer, path: string): void {
    const { pageId, slot } = pageSlotOf(firstKeyId);
    for (let i = 0; (i + 1) * DATA_KEY_FILE_BYTES <= slots.length; i++) {
      const bytes = slots.subarray(i * DATA_KEY_FILE_BYTES, (i + 1) * DATA_KEY_FILE_BYTES);
      if (isZeroed(bytes)) continue;
      unwrapDataKey(this.#wrappingKey, pageKeyId(pageId, slot + i), bytes, path).fill(0);
      return;
    }
  }

  private async readKeys(keyIds: readonly string[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    for (const [keyId, { bytes, where }] of await this.findWrapped(keyIds)) found.set(keyId, unwrapDataKey(this.#wrappingKey, keyId, bytes, where));
    return found;
  }

  /** The wrapped bytes of each stored key among `keyIds` (destroyed and unknown ones left out). */
  private async findWrapped(keyIds: readonly string[]): Promise<Map<string, { bytes: Buffer; where: string }>> {
    for (const keyId of keyIds) checkKeyId(keyId);
    const rows = await selectRows(this.pool, keyIds, '');
    const found = new Map<string, { bytes: Buffer; where: string }>();
    for (const keyId of new Set(keyIds)) {
      for (const row of rows) {
        const at = slotOffset(row, keyId);
        if (at === undefined || at + DATA_KEY_FILE_BYTES > row.slots.length) continue;
        const bytes = row.slots.subarray(at, at + DATA_KEY_FILE_BYTES);
        if (!isZeroed(bytes)) found.set(keyId, { bytes, where: `${this.description}, key_pages row (${row.page_id}, ${row.chunk})` });
      }
    }
    return found;
  }
}

/** Where a key's wrapped bytes sit in `row`, if the row is the key's (its page's row, or its own). */
function slotOffset(row: PageRow, keyId: string): number | undefined {
  if (row.page_id === keyId && row.chunk === 0) return 0;
  const { pageId, slot } = pageSlotOf(keyId);
  if (row.page_id !== pageId || row.chunk !== Math.floor(slot / KEYS_PER_ROW)) return undefined;
  return (slot % KEYS_PER_ROW) * DATA_KEY_FILE_BYTES;
}

/** The rows that may hold `keyIds`: each key's page row and its own row. */
async function selectRows(db: Pool | PoolClient, keyIds: readonly string[], lock: '' | 'FOR UPDATE'): Promise<PageRow[]> {
  if (keyIds.length === 0) return [];
  const pages: string[] = [];
  const chunks: number[] = [];
  for (const keyId of new Set(keyIds)) {
    const { pageId, slot } = pageSlotOf(keyId);
    pages.push(pageId, keyId);
    chunks.push(Math.floor(slot / KEYS_PER_ROW), 0);
  }
  const { rows } = await db.query<PageRow>(
    `SELECT page_id, chunk, slots FROM key_pages WHERE (page_id, chunk) IN (SELECT * FROM unnest($1::text[], $2::int[])) ORDER BY page_id, chunk ${lock}`,
    [pages, chunks],
  );
  return rows;
}

async function insertRows(client: PoolClient, rows: [string, number, Buffer][]): Promise<void> {
  if (rows.length === 0) return;
  const values = rows.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(', ');
  await client.query(`INSERT INTO key_pages (page_id, chunk, slots) VALUES ${values} ON CONFLICT DO NOTHING`, rows.flat());
}

async function inTransaction<T>(pool: Pool, run: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await run(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
