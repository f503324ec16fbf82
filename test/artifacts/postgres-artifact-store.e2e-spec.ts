import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { ArtifactRef, PostgresArtifactStore } from '@lethe/artifacts';
import { findFreePort } from '@lethe/postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { filesHolding } from '../support/scan';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** An artifact made of one random 16-byte marker repeated: some copy of it survives any split into pages or TOAST chunks. */
function markedArtifact(bytes: number): { marker: Buffer; data: Buffer } {
  const marker = randomBytes(16);
  const data = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += marker.length) marker.copy(data, at);
  return { marker, data };
}

describe('PostgresArtifactStore', () => {
  let db: TestDatabase;
  let admin: Client;
  let store: PostgresArtifactStore;
  beforeAll(async () => {
    db = await createTestDatabase('artifacts');
    admin = new Client({ connectionString: db.url });
    await admin.connect();
    // Small chunks: an artifact spans several rows, as a large one does with the default 1 MiB.
    store = new PostgresArtifactStore({ url: db.url, chunkBytes: 8192 });
  });
  afterAll(async () => {
    await store?.close();
    await admin?.end();
    await db?.drop();
  });

  it('gives back what was put, in chunks, and undefined for an address never put', async () => {
    const bytes = randomBytes(50_000);
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha(Buffer.from('a')) };
    expect(await store.get(ref)).toBeUndefined();
    expect(await store.has(ref)).toBe(false);
    await store.put(ref, bytes);
    expect(Buffer.from((await store.get(ref))!)).toEqual(bytes);
    expect(await store.has(ref)).toBe(true);
    const [row] = (await admin.query(`SELECT chunks, size, sha256 FROM artifacts WHERE address = $1`, [ref.address])).rows;
    expect(row).toEqual({ chunks: 7, size: '50000', sha256: sha(bytes) });
    // Other bytes replace them whole.
    const other = randomBytes(9000);
    await store.put(ref, other);
    expect(Buffer.from((await store.get(ref))!)).toEqual(other);
    expect((await admin.query(`SELECT count(*)::int AS n FROM artifact_chunks WHERE address = $1`, [ref.address])).rows[0].n).toBe(2);
  });

  it('an empty artifact is one empty chunk', async () => {
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha(Buffer.from('empty')) };
    await store.put(ref, new Uint8Array(0));
    expect((await store.get(ref))!.length).toBe(0);
  });

  it('refuses bytes that no longer hash to what was put (CORRUPT, naming the artifact), and chunks that do not add up', async () => {
    const bytes = randomBytes(20_000);
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha(Buffer.from('corrupt')) };
    await store.put(ref, bytes);
    await admin.query(`UPDATE artifact_chunks SET data = set_byte(data, 5, get_byte(data, 5) # 1) WHERE address = $1 AND seq = 1`, [ref.address]);
    await expect(store.get(ref)).rejects.toMatchObject({ code: 'CORRUPT', kind: 'checkpoint', address: ref.address, expectedSha256: sha(bytes) });
    await store.put(ref, bytes); // put again (a retrained checkpoint): repaired
    expect(Buffer.from((await store.get(ref))!)).toEqual(bytes);
    await admin.query(`DELETE FROM artifact_chunks WHERE address = $1 AND seq = 2`, [ref.address]);
    await expect(store.get(ref)).rejects.toMatchObject({ code: 'CORRUPT', address: ref.address });
  });

  it('refuses an ONNX file under an address that is not its SHA-256', async () => {
    const bytes = randomBytes(100);
    await expect(store.put({ kind: 'onnx', address: sha(randomBytes(4)) }, bytes)).rejects.toMatchObject({ code: 'CORRUPT' });
    await store.put({ kind: 'onnx', address: sha(bytes) }, bytes);
    expect(Buffer.from((await store.get({ kind: 'onnx', address: sha(bytes) }))!)).toEqual(bytes);
  });

  it('a put that fails half way leaves nothing: no reader ever sees part of an artifact', async () => {
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha(Buffer.from('half')) };
    // The third chunk's insert fails (a trigger plays a connection dropped mid-put): the transaction rolls back.
    await admin.query(`CREATE FUNCTION fail_third() RETURNS trigger AS $$ BEGIN IF NEW.seq = 2 THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
    await admin.query(`CREATE TRIGGER fail_third BEFORE INSERT ON artifact_chunks FOR EACH ROW EXECUTE FUNCTION fail_third()`);
    try {
      await expect(store.put(ref, randomBytes(30_000))).rejects.toThrow('disk full');
    } finally {
      await admin.query(`DROP TRIGGER fail_third ON artifact_chunks; DROP FUNCTION fail_third()`);
    }
    expect(await store.has(ref)).toBe(false);
    expect((await admin.query(`SELECT count(*)::int AS n FROM artifact_chunks WHERE address = $1`, [ref.address])).rows[0].n).toBe(0);
  });

  it('a store whose database cannot be reached is UNAVAILABLE, naming it without its password', async () => {
    const port = await findFreePort();
    const down = new PostgresArtifactStore({ url: `postgres://lethe:s3cret@127.0.0.1:${port}/lethe`, connectTimeoutMs: 2000 });
    try {
      const error = await down.get({ kind: 'checkpoint', address: sha(Buffer.from('x')) }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', store: `PostgreSQL 127.0.0.1:${port}/lethe` });
      expect((error as Error).message).toContain('ECONNREFUSED');
      expect((error as Error).message).not.toContain('s3cret');
    } finally {
      await down.close();
    }
  });

  describe('what a deletion leaves on disk', () => {
    let dataDirectory: string;
    let relationFiles: () => Promise<string[]>;
    const walFiles = () => readdirSync(join(dataDirectory, 'pg_wal')).filter((f) => /^[0-9A-F]{24}$/.test(f)).map((f) => join(dataDirectory, 'pg_wal', f));

    beforeAll(async () => {
      dataDirectory = (await admin.query(`SHOW data_directory`)).rows[0].data_directory;
      // The chunks' table, its TOAST table and their indexes, each with its segments (relfilenode, .1, ...).
      relationFiles = async () => {
        const { rows } = await admin.query(
          `SELECT pg_relation_filepath(c.oid) AS path FROM pg_class c
            WHERE c.oid IN ('artifact_chunks'::regclass, (SELECT reltoastrelid FROM pg_class WHERE oid = 'artifact_chunks'::regclass))
               OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ('artifact_chunks'::regclass, (SELECT reltoastrelid FROM pg_class WHERE oid = 'artifact_chunks'::regclass)))`,
        );
        return rows.flatMap((r: { path: string }) => {
          const base = join(dataDirectory, r.path);
          return readdirSync(join(base, '..')).filter((f) => f === r.path.split('/').pop() || f.startsWith(`${r.path.split('/').pop()}.`)).map((f) => join(base, '..', f));
        });
      };
    });

    it('plain VACUUM: gone for every query, but the bytes stay in the table pages until reused, and in the WAL (positive control: found before)', async () => {
      const deleted = markedArtifact(64 * 1024);
      const kept = markedArtifact(64 * 1024);
      const deletedRef: ArtifactRef = { kind: 'checkpoint', address: sha(deleted.data) };
      const keptRef: ArtifactRef = { kind: 'checkpoint', address: sha(kept.data) };
      await store.put(deletedRef, deleted.data);
      await store.put(keptRef, kept.data); // after it, so its pages are not the table's last ones (VACUUM truncates those)
      await admin.query('CHECKPOINT');
      expect(filesHolding(await relationFiles(), deleted.marker).length).toBeGreaterThan(0);
      expect(filesHolding(walFiles(), deleted.marker).length).toBeGreaterThan(0);

      expect(await store.delete(deletedRef)).toBe(true);
      await store.reclaim();
      await admin.query('CHECKPOINT');
      expect(await store.get(deletedRef)).toBeUndefined();
      expect((await admin.query(`SELECT count(*)::int AS n FROM artifact_chunks WHERE address = $1`, [deletedRef.address])).rows[0].n).toBe(0);
      // What README says remains: the freed space of the TOAST pages still holds the bytes, and so does the WAL.
      expect(filesHolding(await relationFiles(), deleted.marker).length).toBeGreaterThan(0);
      expect(filesHolding(walFiles(), deleted.marker).length).toBeGreaterThan(0);
      // The kept artifact is intact.
      expect(Buffer.from((await store.get(keptRef))!)).toEqual(kept.data);
    });

    it('ARTIFACT_VACUUM=full: VACUUM FULL rewrites the table, and no table file holds the bytes; the WAL still does until recycled', async () => {
      const full = new PostgresArtifactStore({ url: db.url, chunkBytes: 8192, vacuum: 'full' });
      try {
        const deleted = markedArtifact(64 * 1024);
        const kept = markedArtifact(64 * 1024);
        const deletedRef: ArtifactRef = { kind: 'checkpoint', address: sha(deleted.data) };
        await full.put(deletedRef, deleted.data);
        await full.put({ kind: 'checkpoint', address: sha(kept.data) }, kept.data);
        await admin.query('CHECKPOINT');
        const before = await relationFiles();
        expect(filesHolding(before, deleted.marker).length).toBeGreaterThan(0);

        await full.delete(deletedRef);
        await full.reclaim();
        await admin.query('CHECKPOINT');
        const after = await relationFiles();
        expect(after).not.toEqual(before); // new files (relfilenodes): the old ones are unlinked
        for (const file of before) expect(() => statSync(file)).toThrow();
        expect(filesHolding(after, deleted.marker)).toEqual([]);
        // Positive control in the same files: the kept artifact's marker is there.
        expect(filesHolding(after, kept.marker).length).toBeGreaterThan(0);
        expect(filesHolding(walFiles(), deleted.marker).length).toBeGreaterThan(0);
      } finally {
        await full.close();
      }
    });
  });
});
