import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { FileKeyStore, KEYS_PER_ROW, PostgresKeyStore, keyStoreDir } from '@lethe/keystore';
import { ConfigError } from '../../apps/api/src/config/config';
import { openServiceKeyStore } from '../../apps/api/src/config/key-store';
import { TestDatabase, createTestDatabase } from '../support/database';
import { filesHolding } from '../support/scan';

const MASTER = randomBytes(32).toString('hex');
const WRAPPED_BYTES = 61;

describe('PostgresKeyStore: data keys as rows, for workers that share only the database', () => {
  let db: TestDatabase;
  let admin: Client;
  let store: PostgresKeyStore;
  /** The wrapped bytes of a key as its row holds them. */
  const wrappedOf = async (keyId: string): Promise<Buffer> => {
    const { rows } = await admin.query(`SELECT page_id, chunk, slots FROM key_pages WHERE page_id = $1 OR (page_id = $2 AND chunk = $3)`, [
      keyId,
      keyId.slice(0, 56),
      Math.floor(parseInt(keyId.slice(56), 16) / KEYS_PER_ROW),
    ]);
    const row = rows.find((r: { page_id: string }) => r.page_id === keyId) ?? rows[0];
    const at = row.page_id === keyId ? 0 : (parseInt(keyId.slice(56), 16) % KEYS_PER_ROW) * WRAPPED_BYTES;
    return Buffer.from(row.slots.subarray(at, at + WRAPPED_BYTES));
  };

  /** The files of key_pages, its TOAST table and their indexes, as they are now. */
  const relationFiles = async (): Promise<string[]> => {
    const dataDirectory: string = (await admin.query(`SHOW data_directory`)).rows[0].data_directory;
    const { rows } = await admin.query(
      `SELECT pg_relation_filepath(c.oid) AS path FROM pg_class c
        WHERE c.oid = 'key_pages'::regclass OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'key_pages'::regclass)
           OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ('key_pages'::regclass, (SELECT reltoastrelid FROM pg_class WHERE oid = 'key_pages'::regclass)))`,
    );
    return rows
      .filter((r: { path: string | null }) => r.path !== null)
      .flatMap((r: { path: string }) => {
        const base = join(dataDirectory, r.path);
        const name = r.path.split('/').pop()!;
        return readdirSync(join(base, '..')).filter((f) => f === name || f.startsWith(`${name}.`)).map((f) => join(base, '..', f));
      });
  };
  /** The file node of key_pages: a VACUUM FULL gives it a new one. */
  const fileNode = async (): Promise<string> => (await admin.query(`SELECT pg_relation_filenode('key_pages')::text AS n`)).rows[0].n;

  beforeAll(async () => {
    db = await createTestDatabase('keystore');
    admin = new Client({ connectionString: db.url });
    await admin.connect();
    store = await PostgresKeyStore.open({ url: db.url, masterKey: MASTER });
  });
  afterAll(async () => {
    await store?.close();
    await admin?.end();
    await db?.drop();
  });

  it('gives back the keys it made (in pages of rows, and one by id), to another process opening it with the same master key', async () => {
    const created = await store.createKeys(150); // three rows: 64 + 64 + 22
    const single = randomBytes(32).toString('hex');
    const singleKey = await store.createKey(single);
    await expect(store.createKey(single)).rejects.toMatchObject({ code: 'KEY_EXISTS' });
    const other = await PostgresKeyStore.open({ url: db.url, masterKey: MASTER });
    try {
      const read = await other.getKeys([...created.map((c) => c.keyId), single]);
      expect(read.size).toBe(151);
      for (const c of created) expect(read.get(c.keyId)).toEqual(c.dataKey);
      expect(await other.getKey(single)).toEqual(singleKey);
      expect((await other.stats()).keys).toBeGreaterThanOrEqual(151);
    } finally {
      await other.close();
    }
    // The database holds wrapped keys only: no data key's bytes are in any row.
    const { rows } = await admin.query(`SELECT slots FROM key_pages`);
    const all = Buffer.concat(rows.map((r: { slots: Buffer }) => r.slots));
    expect(all.includes(singleKey)).toBe(false);
    expect(created.some((c) => all.includes(c.dataKey))).toBe(false);
  });

  it('refuses a wrong master key, changing nothing', async () => {
    const before = (await admin.query(`SELECT count(*)::int AS n FROM key_pages`)).rows[0].n;
    await expect(PostgresKeyStore.open({ url: db.url, masterKey: randomBytes(32).toString('hex') })).rejects.toMatchObject({ code: 'WRONG_MASTER_KEY' });
    expect((await admin.query(`SELECT count(*)::int AS n FROM key_pages`)).rows[0].n).toBe(before);
  });

  it('a destroyed key cannot be opened, its row holds zeros where it was, and after the VACUUM FULL no table file holds its wrapped bytes; a kept key (control) is found everywhere', async () => {
    // 300 keys in 5 rows, beside the rows of the tests before (several rows share a table page): 5 destroyed, from every row.
    const made = await store.createKeys(300);
    const destroyed = [3, 70, 140, 200, 299].map((i) => made[i]);
    const [gone, kept] = [destroyed[0], made[4]];
    const goneWrapped = await wrappedOf(gone.keyId);
    const keptWrapped = await wrappedOf(kept.keyId);
    const destroyedWrapped = await Promise.all(destroyed.map((k) => wrappedOf(k.keyId)));
    const dataDirectory: string = (await admin.query(`SHOW data_directory`)).rows[0].data_directory;
    const walFiles = () => readdirSync(join(dataDirectory, 'pg_wal')).filter((f) => /^[0-9A-F]{24}$/.test(f)).map((f) => join(dataDirectory, 'pg_wal', f));
    await admin.query('CHECKPOINT');
    // Positive control: before the destroy, the table's file holds the wrapped key.
    for (const wrapped of destroyedWrapped) expect(filesHolding(await relationFiles(), wrapped).length).toBeGreaterThan(0);

    expect(await store.destroyKeys([gone.keyId, gone.keyId])).toEqual([
      { keyId: gone.keyId, status: 'destroyed' },
      { keyId: gone.keyId, status: 'destroyed' },
    ]);
    expect((await store.destroyKeys(destroyed.slice(1).map((k) => k.keyId))).map((r) => r.status)).toEqual(['destroyed', 'destroyed', 'destroyed', 'destroyed']);
    expect(await store.destroyKey(gone.keyId)).toEqual({ keyId: gone.keyId, status: 'absent' });
    await admin.query('CHECKPOINT');

    await expect(store.getKey(gone.keyId)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    expect(await store.hasKey(gone.keyId)).toBe(false);
    expect((await store.getKeys([gone.keyId, kept.keyId])).has(gone.keyId)).toBe(false);
    // The row: zeros in the destroyed slot, the kept slot unchanged.
    expect((await wrappedOf(gone.keyId)).equals(Buffer.alloc(WRAPPED_BYTES))).toBe(true);
    expect(await wrappedOf(kept.keyId)).toEqual(keptWrapped);
    expect(await store.getKey(kept.keyId)).toEqual(kept.dataKey);
    // The table's files: the destroyed key's wrapped bytes are gone (the table rewritten without the dead row versions); the kept one's are there.
    const files = await relationFiles();
    for (const wrapped of destroyedWrapped) expect(filesHolding(files, wrapped)).toEqual([]);
    for (const k of made.filter((k) => !destroyed.includes(k))) expect(await store.hasKey(k.keyId)).toBe(true);
    expect(filesHolding(files, keptWrapped).length).toBeGreaterThan(0);
    // What README says remains: the WAL, until its segments are recycled, holds the row as it was (still wrapped under the master key).
    expect(filesHolding(walFiles(), goneWrapped).length).toBeGreaterThan(0);
  });

  it('in an erasure pass, destructions are durable as each returns and the table is rewritten once, at its end: then no table file holds their wrapped bytes (control: before, they do)', async () => {
    const made = await store.createKeys(130);
    const destroyed = [5, 66, 129].map((i) => made[i]); // one in each of its three rows
    const wrapped = await Promise.all(destroyed.map((k) => wrappedOf(k.keyId)));
    const kept = await wrappedOf(made[6].keyId);
    await admin.query('CHECKPOINT');
    // Positive control: the scan finds each wrapped key in the table's files while it is stored.
    for (const w of wrapped) expect(filesHolding(await relationFiles(), w).length).toBeGreaterThan(0);
    const nodeBefore = await fileNode();
    const nodesInPass: string[] = [];
    await store.inErasurePass(async () => {
      // Three destructions, each in a call of its own (as a sweep shreds request after request): none rewrites the table.
      for (const k of destroyed) {
        expect(await store.destroyKeys([k.keyId])).toEqual([{ keyId: k.keyId, status: 'destroyed' }]);
        nodesInPass.push(await fileNode());
      }
      // Durable and final already: another process cannot open them.
      const other = await PostgresKeyStore.open({ url: db.url, masterKey: MASTER });
      try {
        expect((await other.getKeys(destroyed.map((k) => k.keyId))).size).toBe(0);
      } finally {
        await other.close();
      }
    });
    expect(nodesInPass).toEqual([nodeBefore, nodeBefore, nodeBefore]);
    await admin.query('CHECKPOINT');
    // Rewritten at the end (a new file), with none of the destroyed keys' bytes; the kept key's are there.
    expect(await fileNode()).not.toBe(nodeBefore);
    const files = await relationFiles();
    for (const w of wrapped) expect(filesHolding(files, w)).toEqual([]);
    expect(filesHolding(files, kept).length).toBeGreaterThan(0);
    expect(await store.getKey(made[6].keyId)).toEqual(made[6].dataKey);
  });

  it('an erasure pass that throws still rewrites the table for what it destroyed; a destruction outside any pass rewrites at once', async () => {
    const made = await store.createKeys(2);
    const before = await fileNode();
    await expect(
      store.inErasurePass(async () => {
        await store.destroyKey(made[0].keyId);
        throw new Error('stopped mid-pass');
      }),
    ).rejects.toThrow('stopped mid-pass');
    const afterPass = await fileNode();
    expect(afterPass).not.toBe(before);
    await store.destroyKey(made[1].keyId);
    expect(await fileNode()).not.toBe(afterPass);
  });

  it('moves the keys of DATA_DIR/keys in at start (same ids, same data keys, a destroyed one stays destroyed), and destroys their files', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lethe-keys-'));
    const moved = await createTestDatabase('keystore_move');
    try {
      const files = await FileKeyStore.open({ dir: keyStoreDir(dataDir), masterKey: MASTER });
      const paged = await files.createKeys(100);
      const single = randomBytes(32).toString('hex');
      const singleKey = await files.createKey(single);
      await files.destroyKey(paged[7].keyId);
      const opened = await openServiceKeyStore(dataDir, { LETHE_MASTER_KEY: MASTER }, moved.url);
      try {
        expect(opened).toBeInstanceOf(PostgresKeyStore);
        const read = await opened.getKeys([...paged.map((k) => k.keyId), single]);
        expect(read.size).toBe(100); // 99 page keys and the single one
        expect(read.has(paged[7].keyId)).toBe(false);
        for (const k of paged.filter((_, i) => i !== 7)) expect(read.get(k.keyId)).toEqual(k.dataKey);
        expect(read.get(single)).toEqual(singleKey);
        // The key files are destroyed; the master key's check stays.
        expect(readdirSync(keyStoreDir(dataDir)).filter((f) => f.endsWith('.keys') || f.endsWith('.dek'))).toEqual([]);
        expect(existsSync(join(keyStoreDir(dataDir), 'master.check'))).toBe(true);
      } finally {
        await opened.close?.();
      }
      // A worker elsewhere without LETHE_MASTER_KEY (and no master.key of its own) is refused, naming the variable.
      const elsewhere = mkdtempSync(join(tmpdir(), 'lethe-worker-'));
      try {
        const error = await openServiceKeyStore(elsewhere, {}, moved.url).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toMatch(/^LETHE_MASTER_KEY: is unset, but the key store in the database holds keys/);
        expect(existsSync(keyStoreDir(elsewhere))).toBe(false);
        // With it, it opens the same keys.
        const worker = await openServiceKeyStore(elsewhere, { LETHE_MASTER_KEY: MASTER }, moved.url);
        expect(await worker.getKey(single)).toEqual(singleKey);
        await worker.close?.();
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
      // KEY_STORE=files keeps the file store even with DATABASE_URL; KEY_STORE=postgres without it is a ConfigError.
      const asFiles = await openServiceKeyStore(dataDir, { LETHE_MASTER_KEY: MASTER, KEY_STORE: 'files' }, moved.url);
      expect(asFiles).toBeInstanceOf(FileKeyStore);
      await expect(openServiceKeyStore(dataDir, { LETHE_MASTER_KEY: MASTER, KEY_STORE: 'postgres' })).rejects.toThrow('KEY_STORE: is "postgres", which needs DATABASE_URL');
    } finally {
      await moved.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
