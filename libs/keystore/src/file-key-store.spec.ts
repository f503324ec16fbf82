import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, linkSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  DATA_KEY_FILE_BYTES,
  KEY_PAGE_SUFFIX,
  FileKeyStore,
  KEY_CHECK_FILE,
  MASTER_KEY_FILE,
  createKeyId,
  keyStoreDir,
  openPayload,
  payloadAssociatedData,
  sealPayload,
} from './index';
import { rejected } from './testing/thrown';


/** Every entry of a directory with its mode, size, content hash and mtime: what "changed nothing" compares. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const self = await fs.stat(dir);
  out['.'] = `${(self.mode & 0o777).toString(8)} ${self.mtimeMs}`;
  for (const name of (await fs.readdir(dir)).sort()) {
    const path = join(dir, name);
    const stat = await fs.stat(path);
    const hash = createHash('sha256').update(await fs.readFile(path)).digest('hex');
    out[name] = `${(stat.mode & 0o777).toString(8)} ${stat.size} ${hash} ${stat.mtimeMs}`;
  }
  return out;
}

const hexKey = (): string => randomBytes(32).toString('hex');
const modeOf = async (path: string): Promise<number> => (await fs.stat(path)).mode & 0o777;

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lethe-keystore-'));
  dir = keyStoreDir(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('FileKeyStore: the master key', () => {
  it('generates master.key (64 hex, mode 600) at first start and reuses it', async () => {
    const first = await FileKeyStore.open({ dir });
    expect(first.masterKeySource).toBe('master.key');
    expect(readFileSync(join(dir, MASTER_KEY_FILE), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(await modeOf(join(dir, MASTER_KEY_FILE))).toBe(0o600);
    expect(await modeOf(join(dir, KEY_CHECK_FILE))).toBe(0o600);
    expect(await modeOf(dir)).toBe(0o700);
    const keyId = createKeyId();
    const dataKey = await first.createKey(keyId);
    const second = await FileKeyStore.open({ dir });
    expect((await second.getKey(keyId)).equals(dataKey)).toBe(true);
    expect((await second.getLookupKey()).equals(await first.getLookupKey())).toBe(true);
  });

  it('with LETHE_MASTER_KEY writes no master.key and opens again with the same key, in hex or base64', async () => {
    const master = hexKey();
    const store = await FileKeyStore.open({ dir, masterKey: master });
    expect(store.masterKeySource).toBe('LETHE_MASTER_KEY');
    const keyId = createKeyId();
    const dataKey = await store.createKey(keyId);
    expect((await fs.readdir(dir)).sort()).toEqual([`${keyId}.dek`, KEY_CHECK_FILE]);
    const again = await FileKeyStore.open({ dir, masterKey: Buffer.from(master, 'hex').toString('base64') });
    expect((await again.getKey(keyId)).equals(dataKey)).toBe(true);
  });

  it('refuses a wrong LETHE_MASTER_KEY at open, naming it, with every file unchanged', async () => {
    const store = await FileKeyStore.open({ dir, masterKey: hexKey() });
    await store.createKey(createKeyId());
    await fs.chmod(dir, 0o750); // a right key would tighten it to 700; a refused one must leave even that
    const before = await snapshot(dir);
    const error = await rejected(() => FileKeyStore.open({ dir, masterKey: hexKey() }));
    expect(error).toMatchObject({ code: 'WRONG_MASTER_KEY', variable: 'LETHE_MASTER_KEY', path: dir });
    expect(error.message).toMatch(/^LETHE_MASTER_KEY is the wrong master key for the key store in .*nothing was changed$/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('points at master.key when LETHE_MASTER_KEY is set to another key than the generated one', async () => {
    await FileKeyStore.open({ dir });
    const before = await snapshot(dir);
    const error = await rejected(() => FileKeyStore.open({ dir, masterKey: hexKey() }));
    expect(error.code).toBe('WRONG_MASTER_KEY');
    expect(error.message).toContain(`${join(dir, MASTER_KEY_FILE)} exists: unset LETHE_MASTER_KEY to use it`);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a master.key replaced by another key, naming the file and the variable', async () => {
    await FileKeyStore.open({ dir });
    writeFileSync(join(dir, MASTER_KEY_FILE), `${hexKey()}\n`, { mode: 0o600 });
    const before = await snapshot(dir);
    const error = await rejected(() => FileKeyStore.open({ dir }));
    expect(error).toMatchObject({ code: 'WRONG_MASTER_KEY', variable: 'LETHE_MASTER_KEY' });
    expect(error.message).toContain(`${join(dir, MASTER_KEY_FILE)} (read because LETHE_MASTER_KEY is unset)`);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a malformed LETHE_MASTER_KEY before touching the disk', async () => {
    const error = await rejected(() => FileKeyStore.open({ dir, masterKey: 'not-a-key' }));
    expect(error).toMatchObject({ code: 'MALFORMED_MASTER_KEY', variable: 'LETHE_MASTER_KEY' });
    expect(error.message).toContain('LETHE_MASTER_KEY must be 64 hex characters or the base64 of 32 bytes');
    expect(error.message).not.toContain('not-a-key');
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    const store = await FileKeyStore.open({ dir, masterKey: hexKey() });
    await store.createKey(createKeyId());
    const before = await snapshot(dir);
    expect((await rejected(() => FileKeyStore.open({ dir, masterKey: 'ab'.repeat(31) }))).code).toBe('MALFORMED_MASTER_KEY');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('refuses a malformed master.key, naming the file', async () => {
    await FileKeyStore.open({ dir });
    writeFileSync(join(dir, MASTER_KEY_FILE), 'truncated\n');
    const error = await rejected(() => FileKeyStore.open({ dir }));
    expect(error).toMatchObject({ code: 'MALFORMED_MASTER_KEY', path: join(dir, MASTER_KEY_FILE) });
  });

  it('refuses to generate a new master key over keys whose master key is gone', async () => {
    const store = await FileKeyStore.open({ dir });
    await store.createKey(createKeyId());
    rmSync(join(dir, MASTER_KEY_FILE));
    const before = await snapshot(dir);
    expect(await rejected(() => FileKeyStore.open({ dir }))).toMatchObject({ code: 'MASTER_KEY_MISSING', variable: 'LETHE_MASTER_KEY' });
    expect(await snapshot(dir)).toEqual(before);
    rmSync(join(dir, KEY_CHECK_FILE));
    expect((await rejected(() => FileKeyStore.open({ dir }))).code).toBe('MASTER_KEY_MISSING');
  });

  it('without a key check, verifies the master key on a stored data key before writing a new check', async () => {
    const master = hexKey();
    const store = await FileKeyStore.open({ dir, masterKey: master });
    const keyId = createKeyId();
    const dataKey = await store.createKey(keyId);
    rmSync(join(dir, KEY_CHECK_FILE));
    const before = await snapshot(dir);
    const error = await rejected(() => FileKeyStore.open({ dir, masterKey: hexKey() }));
    expect(error.code).toBe('WRONG_MASTER_KEY');
    expect(error.message).toContain(`key ${keyId} does not unwrap under it`);
    expect(await snapshot(dir)).toEqual(before);
    const reopened = await FileKeyStore.open({ dir, masterKey: master });
    expect((await reopened.getKey(keyId)).equals(dataKey)).toBe(true);
    expect((await fs.readdir(dir)).includes(KEY_CHECK_FILE)).toBe(true);
  });

  it('refuses a corrupt key check', async () => {
    await FileKeyStore.open({ dir });
    writeFileSync(join(dir, KEY_CHECK_FILE), '{"version":1,"check":"zz"}');
    expect(await rejected(() => FileKeyStore.open({ dir }))).toMatchObject({ code: 'CORRUPT_KEY_STORE', path: join(dir, KEY_CHECK_FILE) });
  });

  it('agrees on one master key when several processes start at once', async () => {
    const stores = await Promise.all(Array.from({ length: 6 }, () => FileKeyStore.open({ dir })));
    const lookupKeys = await Promise.all(stores.map((s) => s.getLookupKey()));
    expect(new Set(lookupKeys.map((k) => k.toString('hex'))).size).toBe(1);
    expect((await fs.readdir(dir)).sort()).toEqual([KEY_CHECK_FILE, MASTER_KEY_FILE]);
  });

  it('never shows a key when the store or its errors are printed (the key is in master.key, where the scan finds it)', async () => {
    const store = await FileKeyStore.open({ dir });
    const masterHex = readFileSync(join(dir, MASTER_KEY_FILE), 'utf8').trim();
    const lookupHex = (await store.getLookupKey()).toString('hex');
    const dataKey = await store.createKey(createKeyId());
    const wrong = await rejected(() => FileKeyStore.open({ dir, masterKey: hexKey() }));
    const printed = [inspect(store, { showHidden: true, depth: 10 }), JSON.stringify(store), String(store), inspect(wrong), JSON.stringify(wrong)].join('\n');
    for (const secret of [masterHex, lookupHex, dataKey.toString('hex'), dataKey.toString('base64')]) {
      expect(printed).not.toContain(secret);
    }
    expect(readFileSync(join(dir, MASTER_KEY_FILE), 'utf8')).toContain(masterHex);
  });
});

describe('FileKeyStore: data keys', () => {
  let master: string;
  let store: FileKeyStore;
  beforeEach(async () => {
    master = hexKey();
    store = await FileKeyStore.open({ dir, masterKey: master });
  });

  it('round-trips a data key, and it seals and opens payloads', async () => {
    const keyId = createKeyId();
    const dataKey = await store.createKey(keyId);
    expect(dataKey.length).toBe(32);
    expect(await store.hasKey(keyId)).toBe(true);
    const again = await store.getKey(keyId);
    expect(again.equals(dataKey)).toBe(true);
    const ad = payloadAssociatedData('ds', 'cc'.repeat(32));
    expect(openPayload(again, sealPayload(dataKey, Buffer.from('features'), ad), ad).toString()).toBe('features');
    // Stored wrapped: the file does not hold the key's bytes.
    const file = readFileSync(store.pathOf(keyId));
    expect(file.length).toBe(DATA_KEY_FILE_BYTES);
    expect(file.includes(dataKey)).toBe(false);
  });

  it('destroys a key: the file exists before and not after, the listing shows no trace, a get says it is gone', async () => {
    const keyId = createKeyId();
    const other = createKeyId();
    const dataKey = await store.createKey(keyId);
    const otherKey = await store.createKey(other);
    const ad = payloadAssociatedData('ds', 'dd'.repeat(32));
    const sealed = sealPayload(dataKey, Buffer.from('subject data'), ad);
    // Positive control: before the destroy, the raw file is there and listed, and it opens the payload.
    expect(readFileSync(store.pathOf(keyId)).length).toBe(DATA_KEY_FILE_BYTES);
    expect((await fs.readdir(dir)).filter((n) => n.includes(keyId))).toEqual([`${keyId}.dek`]);
    expect(openPayload(await store.getKey(keyId), sealed, ad).toString()).toBe('subject data');

    expect(await store.destroyKey(keyId)).toEqual({ keyId, status: 'destroyed' });

    await expect(fs.stat(store.pathOf(keyId))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await fs.readdir(dir)).filter((n) => n.includes(keyId))).toEqual([]);
    expect(await store.hasKey(keyId)).toBe(false);
    const error = await rejected(() => store.getKey(keyId));
    expect(error).toMatchObject({ code: 'KEY_NOT_FOUND', keyId, field: 'keyId' });
    expect(error.message).toBe(`key ${keyId} is not in the key store (destroyed, or never created)`);
    const listed: string[] = [];
    for await (const id of store.listKeys()) listed.push(id);
    expect(listed).toEqual([other]);
    expect((await store.getKey(other)).equals(otherKey)).toBe(true);
    expect(await store.destroyKey(keyId)).toEqual({ keyId, status: 'absent' });
    expect(await store.destroyKey(createKeyId())).toMatchObject({ status: 'absent' });
  });

  it('zeroes the key bytes before the unlink, so another name of the same file keeps nothing', async () => {
    const keyId = createKeyId();
    await store.createKey(keyId);
    // A crash between link and unlink in createFileExclusive leaves such a second name.
    const leftover = join(dir, `.${keyId}.dek.0123456789ab.tmp`);
    linkSync(store.pathOf(keyId), leftover);
    expect(readFileSync(leftover).every((b) => b === 0)).toBe(false);
    await store.destroyKey(keyId);
    expect(readFileSync(leftover)).toEqual(Buffer.alloc(DATA_KEY_FILE_BYTES));
  });

  it('treats a zeroed key file (a destroy cut short by a crash) as destroyed, and a second destroy finishes it', async () => {
    const keyId = createKeyId();
    await store.createKey(keyId);
    writeFileSync(store.pathOf(keyId), Buffer.alloc(DATA_KEY_FILE_BYTES));
    expect((await rejected(() => store.getKey(keyId))).code).toBe('KEY_NOT_FOUND');
    expect(await store.hasKey(keyId)).toBe(false);
    expect(await store.destroyKey(keyId)).toEqual({ keyId, status: 'destroyed' });
    expect(await fs.readdir(dir)).toEqual([KEY_CHECK_FILE]);
  });

  it('refuses a tampered, truncated or renamed key file, naming the key', async () => {
    const keyId = createKeyId();
    await store.createKey(keyId);
    const path = store.pathOf(keyId);
    const good = readFileSync(path);
    for (let i = 0; i < good.length; i += 7) {
      const tampered = Buffer.from(good);
      tampered[i] ^= 0x80;
      writeFileSync(path, tampered);
      const error = await rejected(() => store.getKey(keyId));
      expect(error).toMatchObject({ code: 'CORRUPT_KEY', keyId, path });
      expect(error.message).toContain(`key ${keyId} is corrupt`);
    }
    writeFileSync(path, good.subarray(0, 60));
    expect(await rejected(() => store.getKey(keyId))).toMatchObject({ code: 'CORRUPT_KEY', got: 60, want: 61 });
    // The key id is bound to the file: a key copied under another id does not unwrap.
    const otherId = createKeyId();
    writeFileSync(store.pathOf(otherId), good);
    expect(await rejected(() => store.getKey(otherId))).toMatchObject({ code: 'CORRUPT_KEY', keyId: otherId });
    writeFileSync(path, good);
    expect((await store.getKey(keyId)).length).toBe(32);
  });

  it('never overwrites a key', async () => {
    const keyId = createKeyId();
    const dataKey = await store.createKey(keyId);
    expect(await rejected(() => store.createKey(keyId))).toMatchObject({ code: 'KEY_EXISTS', keyId });
    expect((await store.getKey(keyId)).equals(dataKey)).toBe(true);
  });

  it('creates many distinct keys at once, each file whole and mode 600, no temp file left', async () => {
    const ids = Array.from({ length: 200 }, () => createKeyId());
    const keys = await Promise.all(ids.map((id) => store.createKey(id)));
    for (let i = 0; i < ids.length; i++) expect((await store.getKey(ids[i])).equals(keys[i])).toBe(true);
    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(ids.length);
    const names = await fs.readdir(dir);
    expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(names.length).toBe(ids.length + 1);
    for (const id of ids.slice(0, 20)) expect(await modeOf(store.pathOf(id))).toBe(0o600);
    const listed: string[] = [];
    for await (const id of store.listKeys()) listed.push(id);
    expect(listed.sort()).toEqual([...ids].sort());
    const stats = await store.stats();
    expect(stats).toMatchObject({ keys: 200, bytes: 200 * DATA_KEY_FILE_BYTES });
    expect(stats.allocatedBytes).toBeGreaterThanOrEqual(stats.bytes);
  });

  it('keeps modes 600 and 700 whatever the umask, and tightens a directory left open to others', async () => {
    const previous = process.umask(0);
    try {
      const keyId = createKeyId();
      await store.createKey(keyId);
      expect(await modeOf(store.pathOf(keyId))).toBe(0o600);
      const fresh = join(root, 'other', 'keys');
      await FileKeyStore.open({ dir: fresh });
      expect(await modeOf(fresh)).toBe(0o700);
      expect(await modeOf(join(fresh, MASTER_KEY_FILE))).toBe(0o600);
      await fs.chmod(dir, 0o755);
      await fs.chmod(join(fresh, MASTER_KEY_FILE), 0o644);
      await FileKeyStore.open({ dir, masterKey: master });
      await FileKeyStore.open({ dir: fresh });
      expect(await modeOf(dir)).toBe(0o700);
      expect(await modeOf(join(fresh, MASTER_KEY_FILE))).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('clears temp files left by a crash at open, but not one being written now', async () => {
    const stale = join(dir, `.${createKeyId()}.dek.aaaaaaaaaaaa.tmp`);
    const fresh = join(dir, `.${createKeyId()}.dek.bbbbbbbbbbbb.tmp`);
    writeFileSync(stale, randomBytes(DATA_KEY_FILE_BYTES));
    writeFileSync(fresh, randomBytes(DATA_KEY_FILE_BYTES));
    const old = new Date(Date.now() - 3600_000);
    utimesSync(stale, old, old);
    await FileKeyStore.open({ dir, masterKey: master });
    expect((await fs.readdir(dir)).sort()).toEqual([fresh.slice(dir.length + 1), KEY_CHECK_FILE].sort());
  });

  it('takes only opaque key ids', async () => {
    for (const keyId of ['alice@example.com', '../../etc/passwd', 'AB'.repeat(32), 'ab'.repeat(31), '']) {
      expect(await rejected(() => store.createKey(keyId))).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'keyId' });
      expect((await rejected(() => store.getKey(keyId))).code).toBe('INVALID_ARGUMENT');
      expect((await rejected(() => store.destroyKey(keyId))).code).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('FileKeyStore: key pages (createKeys)', () => {
  let master: string;
  let store: FileKeyStore;
  beforeEach(async () => {
    master = hexKey();
    store = await FileKeyStore.open({ dir, masterKey: master });
  });
  const pageFiles = async () => (await fs.readdir(dir)).filter((n) => n.endsWith(KEY_PAGE_SUFFIX));

  it('makes many keys in one page file, each distinct, readable one by one and together, after a reopen too', async () => {
    const created = await store.createKeys(1000);
    expect(created).toHaveLength(1000);
    expect(new Set(created.map((k) => k.keyId)).size).toBe(1000);
    expect(new Set(created.map((k) => k.dataKey.toString('hex'))).size).toBe(1000);
    const pages = await pageFiles();
    expect(pages).toHaveLength(1);
    expect(readFileSync(join(dir, pages[0])).length).toBe(1000 * DATA_KEY_FILE_BYTES);
    expect(await modeOf(join(dir, pages[0]))).toBe(0o600);
    // Wrapped: the page holds none of the keys' bytes.
    const page = readFileSync(join(dir, pages[0]));
    expect(created.some((k) => page.includes(k.dataKey))).toBe(false);
    const reopened = await FileKeyStore.open({ dir, masterKey: master });
    for (const { keyId, dataKey } of created.slice(0, 50)) expect((await reopened.getKey(keyId)).equals(dataKey)).toBe(true);
    const all = await reopened.getKeys([...created.map((k) => k.keyId), createKeyId()]);
    expect(all.size).toBe(1000);
    for (const { keyId, dataKey } of created) expect(all.get(keyId)!.equals(dataKey)).toBe(true);
    expect(await reopened.stats()).toMatchObject({ keys: 1000, bytes: 1000 * DATA_KEY_FILE_BYTES });
    expect(await store.createKeys(0)).toEqual([]);
    expect((await rejected(() => store.createKeys(-1))).code).toBe('INVALID_ARGUMENT');
  });

  it('destroys a page key by zeroing its slot (synced), leaves the others, and removes the page with its last key', async () => {
    const [a, b, c] = await store.createKeys(3);
    const single = createKeyId();
    await store.createKey(single);
    const [page] = await pageFiles();
    const before = readFileSync(join(dir, page));
    const slotA = before.subarray(0, DATA_KEY_FILE_BYTES);
    expect(slotA.every((x) => x === 0)).toBe(false);

    expect(await store.destroyKeys([a.keyId])).toEqual([{ keyId: a.keyId, status: 'destroyed' }]);
    const after = readFileSync(join(dir, page));
    expect(after.subarray(0, DATA_KEY_FILE_BYTES)).toEqual(Buffer.alloc(DATA_KEY_FILE_BYTES));
    expect(after.includes(slotA)).toBe(false);
    expect(after.subarray(DATA_KEY_FILE_BYTES)).toEqual(before.subarray(DATA_KEY_FILE_BYTES));
    expect(await store.hasKey(a.keyId)).toBe(false);
    expect((await rejected(() => store.getKey(a.keyId))).code).toBe('KEY_NOT_FOUND');
    expect((await store.getKeys([a.keyId, b.keyId])).has(a.keyId)).toBe(false);
    expect((await store.getKey(b.keyId)).equals(b.dataKey)).toBe(true);
    expect(await store.destroyKey(a.keyId)).toEqual({ keyId: a.keyId, status: 'absent' });
    const listed: string[] = [];
    for await (const id of store.listKeys()) listed.push(id);
    expect(listed.sort()).toEqual([b.keyId, c.keyId, single].sort());

    expect(await store.destroyKeys([b.keyId, c.keyId, single])).toEqual([
      { keyId: b.keyId, status: 'destroyed' },
      { keyId: c.keyId, status: 'destroyed' },
      { keyId: single, status: 'destroyed' },
    ]);
    expect(await pageFiles()).toEqual([]);
    expect(await fs.readdir(dir)).toEqual([KEY_CHECK_FILE]);
    expect(await store.destroyKeys([b.keyId])).toEqual([{ keyId: b.keyId, status: 'absent' }]);
  });

  it('refuses a tampered slot or a slot moved to another place, naming the key', async () => {
    const [a, b] = await store.createKeys(2);
    const [name] = await pageFiles();
    const path = join(dir, name);
    const good = readFileSync(path);
    const tampered = Buffer.from(good);
    tampered[DATA_KEY_FILE_BYTES + 20] ^= 1;
    writeFileSync(path, tampered);
    expect(await rejected(() => store.getKey(b.keyId))).toMatchObject({ code: 'CORRUPT_KEY', keyId: b.keyId, path });
    expect((await store.getKey(a.keyId)).equals(a.dataKey)).toBe(true);
    // Swapping two slots: each key is bound to its page and slot.
    writeFileSync(path, Buffer.concat([good.subarray(DATA_KEY_FILE_BYTES), good.subarray(0, DATA_KEY_FILE_BYTES)]));
    expect((await rejected(() => store.getKey(a.keyId))).code).toBe('CORRUPT_KEY');
    expect((await rejected(() => store.getKeys([b.keyId]))).code).toBe('CORRUPT_KEY');
  });

  it('counts page keys as keys: no master key is generated over them, and a wrong master key is caught on them', async () => {
    const fresh = join(root, 'paged', 'keys');
    const generated = await FileKeyStore.open({ dir: fresh });
    await generated.createKeys(2);
    rmSync(join(fresh, MASTER_KEY_FILE));
    expect((await rejected(() => FileKeyStore.open({ dir: fresh }))).code).toBe('MASTER_KEY_MISSING');
    rmSync(join(fresh, KEY_CHECK_FILE));
    expect((await rejected(() => FileKeyStore.open({ dir: fresh, masterKey: hexKey() }))).code).toBe('WRONG_MASTER_KEY');
  });

  it('will not create a single key under the id of a page key', async () => {
    const [a] = await store.createKeys(1);
    expect(await rejected(() => store.createKey(a.keyId))).toMatchObject({ code: 'KEY_EXISTS', keyId: a.keyId });
  });
});
