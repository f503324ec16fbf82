import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createFileExclusive, destroyFile, openIfPresent, removeStaleTempFiles, syncDirectory } from './durable-file';
import { encodeParts } from './encoding';
import { KeyStoreError } from './errors';
import { checkKeyId, isKeyId } from './key-id';
import { CreatedKey, DestroyKeyResult, KeyStore, KeyStoreStats } from './key-store';
import { KEY_PAGE_SUFFIX, MAX_KEYS_PER_PAGE, createPageId, pageIdOf, pageKeyId, pageSlotOf } from './key-page';
import { MASTER_KEY_VARIABLE, SubKeys, createMasterKey, deriveSubKeys, formatMasterKey, parseMasterKey } from './master-key';
import { KEY_BYTES } from './primitives';
import { SEAL_OVERHEAD, openPayload, sealPayload } from './seal';

/** The master key generated at first start when LETHE_MASTER_KEY is unset: 64 hex characters, mode 600. */
export const MASTER_KEY_FILE = 'master.key';
/** The key check: HKDF-SHA-256(master key, 'lethe/keystore/v1 key check') as JSON, to refuse a wrong master key. */
export const KEY_CHECK_FILE = 'master.check';
/** Data key files: `<keyId>.dek`, the data key wrapped under the wrapping key (61 bytes). */
export const DATA_KEY_SUFFIX = '.dek';
/** Bytes of a data key file: version, nonce, wrapped key, tag. */
export const DATA_KEY_FILE_BYTES = SEAL_OVERHEAD + KEY_BYTES;
/** Temp files older than this are leftovers of a crash (a write takes milliseconds). */
const STALE_TEMP_MS = 10 * 60_000;
const KEY_CHECK_VERSION = 1;

/** Where the service keeps its key store: DATA_DIR/keys. */
export function keyStoreDir(dataDir: string): string {
  return join(dataDir, 'keys');
}

export interface FileKeyStoreOptions {
  /** The key store's directory (`keyStoreDir(DATA_DIR)`); created with mode 700. */
  dir: string;
  /**
   * The value of LETHE_MASTER_KEY as given (64 hex characters or the base64 of 32 bytes). Undefined: the
   * master key is read from `dir/master.key`, which is generated at first start.
   */
  masterKey?: string;
}

/** Where the master key came from (never the key itself). */
export type MasterKeySource = typeof MASTER_KEY_VARIABLE | typeof MASTER_KEY_FILE;

/**
 * Data keys as files, one per key: `<dir>/<keyId>.dek` holds the key sealed (AES-256-GCM, `sealPayload`)
 * under a wrapping key derived from the master key, with the key id as associated data, so a file copied
 * under another id does not unwrap. Files are mode 600 in a directory of mode 700, created atomically and
 * durably (`createFileExclusive`), destroyed by overwrite, unlink and a sync of the directory.
 *
 * `open` verifies the master key against the key check before it writes anything, so a malformed or
 * wrong master key is refused with the store unchanged.
 */
export class FileKeyStore implements KeyStore {
  // Private fields: util.inspect, console.log and JSON.stringify of the store never show them.
  readonly #wrappingKey: Buffer;
  readonly #lookupKey: Buffer;

  private constructor(
    readonly dir: string,
    readonly masterKeySource: MasterKeySource,
    subKeys: SubKeys,
  ) {
    this.#wrappingKey = subKeys.wrappingKey;
    this.#lookupKey = subKeys.lookupKey;
  }

  /** Opens (at first start: creates) the key store in `options.dir`. */
  static async open(options: FileKeyStoreOptions): Promise<FileKeyStore> {
    const dir = resolve(options.dir);
    const given = options.masterKey === undefined ? undefined : parseMasterKey(options.masterKey, { variable: MASTER_KEY_VARIABLE });
    // Each pass either returns, throws, or saw another process create master.key or master.check first
    // (an exclusive create failed) and verifies again against what it made.
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = given ?? (await readMasterKeyFile(dir));
      const check = await readKeyCheck(dir);
      if (stored === undefined) {
        if (check !== undefined || (await findStoredKey(dir)) !== undefined) {
          throw new KeyStoreError(
            'MASTER_KEY_MISSING',
            `${MASTER_KEY_VARIABLE} is unset and ${join(dir, MASTER_KEY_FILE)} is absent, but the key store in ${dir} holds keys: ` +
              `set ${MASTER_KEY_VARIABLE} to the master key they were wrapped under; nothing was changed`,
            { variable: MASTER_KEY_VARIABLE, path: dir },
          );
        }
        await ensureDirectory(dir);
        await createFileExclusive(dir, MASTER_KEY_FILE, Buffer.from(formatMasterKey(createMasterKey())));
        continue;
      }
      const source: MasterKeySource = given === undefined ? MASTER_KEY_FILE : MASTER_KEY_VARIABLE;
      const subKeys = deriveSubKeys(stored);
      if (check !== undefined) await verifyKeyCheck(dir, source, subKeys, check);
      else await verifyAgainstDataKey(dir, source, subKeys);
      // Verified: from here on writing is safe.
      await ensureDirectory(dir);
      if (check === undefined && !(await createFileExclusive(dir, KEY_CHECK_FILE, formatKeyCheck(subKeys.keyCheck)))) continue;
      await tightenMode(dir, 0o700);
      if (source === MASTER_KEY_FILE) await tightenMode(join(dir, MASTER_KEY_FILE), 0o600);
      await removeStaleTempFiles(dir, STALE_TEMP_MS);
      return new FileKeyStore(dir, source, subKeys);
    }
    throw new Error(`key store in ${dir}: master.key or master.check keeps changing while it is opened`);
  }

  /** The file of a data key. */
  pathOf(keyId: string): string {
    checkKeyId(keyId);
    return join(this.dir, `${keyId}${DATA_KEY_SUFFIX}`);
  }

  async createKey(keyId: string): Promise<Buffer> {
    checkKeyId(keyId);
    if (await this.hasKey(keyId)) throw keyExists(keyId); // e.g. a key page's id
    const dataKey = randomBytes(KEY_BYTES);
    const created = await createFileExclusive(this.dir, `${keyId}${DATA_KEY_SUFFIX}`, wrapDataKey(this.#wrappingKey, keyId, dataKey));
    if (!created) {
      dataKey.fill(0);
      throw keyExists(keyId);
    }
    return dataKey;
  }

  /**
   * Makes `count` keys in key pages (`<pageId>.keys`, up to MAX_KEYS_PER_PAGE keys each): one durable
   * file per page instead of one per key, 61 bytes a key on disk instead of a 4 KiB block. A page key's id
   * is its page id and slot; its wrapped bytes are bound to that id as a `.dek` file's are.
   */
  async createKeys(count: number): Promise<CreatedKey[]> {
    checkKeyCount(count);
    const created: CreatedKey[] = [];
    for (let start = 0; start < count; start += MAX_KEYS_PER_PAGE) {
      const pageId = createPageId();
      const { slots: page, keys } = makeSlots(this.#wrappingKey, pageId, 0, Math.min(MAX_KEYS_PER_PAGE, count - start));
      if (!(await createFileExclusive(this.dir, `${pageId}${KEY_PAGE_SUFFIX}`, page))) {
        throw new Error(`key page ${pageId} exists already (28 random bytes met twice: the random source is broken)`);
      }
      created.push(...keys);
    }
    return created;
  }

  async getKey(keyId: string): Promise<Buffer> {
    checkKeyId(keyId);
    const { pageId, slot } = pageSlotOf(keyId);
    const page = await readSlot(this.pagePath(pageId), slot);
    if (page !== undefined) {
      if (isZeroed(page)) throw keyNotFound(keyId);
      return unwrapDataKey(this.#wrappingKey, keyId, page, this.pagePath(pageId));
    }
    const path = this.pathOf(keyId);
    const bytes = await readOptional(path);
    // A zeroed file is a destroy interrupted between overwrite and unlink: the key is gone.
    if (bytes === undefined || isZeroed(bytes)) throw keyNotFound(keyId);
    return unwrapDataKey(this.#wrappingKey, keyId, bytes, path);
  }

  async getKeys(keyIds: readonly string[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    const byPage = new Map<string, string[]>();
    for (const keyId of new Set(keyIds)) {
      checkKeyId(keyId);
      const { pageId } = pageSlotOf(keyId);
      byPage.set(pageId, [...(byPage.get(pageId) ?? []), keyId]);
    }
    for (const [pageId, ids] of byPage) {
      const path = this.pagePath(pageId);
      const page = await readOptional(path);
      for (const keyId of ids) {
        if (page === undefined) {
          // Not a page key: a `.dek` file, or nothing.
          const key = await this.getKey(keyId).catch((error: unknown) => {
            if (error instanceof KeyStoreError && error.code === 'KEY_NOT_FOUND') return undefined;
            throw error;
          });
          if (key !== undefined) found.set(keyId, key);
          continue;
        }
        const bytes = slotOf(page, pageSlotOf(keyId).slot);
        if (bytes !== undefined && !isZeroed(bytes)) found.set(keyId, unwrapDataKey(this.#wrappingKey, keyId, bytes, path));
      }
    }
    return found;
  }

  async hasKey(keyId: string): Promise<boolean> {
    checkKeyId(keyId);
    const { pageId, slot } = pageSlotOf(keyId);
    const page = await readSlot(this.pagePath(pageId), slot);
    if (page !== undefined) return !isZeroed(page);
    const bytes = await readOptional(this.pathOf(keyId));
    return bytes !== undefined && !isZeroed(bytes);
  }

  /** Nothing to defer: each destroyKeys overwrites and syncs the slots in place. */
  inErasurePass<T>(run: () => Promise<T>): Promise<T> {
    return run();
  }

  async destroyKey(keyId: string): Promise<DestroyKeyResult> {
    return (await this.destroyKeys([keyId]))[0];
  }

  /**
   * Destroys keys durably: a `.dek` file is overwritten with zeros, synced, unlinked and its directory synced;
   * in a key page the key's slot is overwritten with zeros and the page synced once for all its keys, and a
   * page whose every slot is zero is then removed as a `.dek` file is. Either way the wrapped key's bytes are
   * overwritten where they lay, not only unlinked (which would leave them in a free block).
   */
  async destroyKeys(keyIds: readonly string[]): Promise<DestroyKeyResult[]> {
    const status = new Map<string, DestroyKeyResult['status']>();
    const byPage = new Map<string, string[]>();
    for (const keyId of keyIds) {
      checkKeyId(keyId);
      const { pageId } = pageSlotOf(keyId);
      byPage.set(pageId, [...(byPage.get(pageId) ?? []), keyId]);
    }
    for (const [pageId, ids] of byPage) {
      const zeroed = await zeroSlots(this.dir, `${pageId}${KEY_PAGE_SUFFIX}`, ids.map((id) => pageSlotOf(id).slot));
      for (const [i, keyId] of ids.entries()) {
        if (zeroed !== undefined) status.set(keyId, status.get(keyId) === 'destroyed' || zeroed[i] ? 'destroyed' : 'absent');
        else {
          const destroyed = await destroyFile(this.dir, `${keyId}${DATA_KEY_SUFFIX}`);
          status.set(keyId, status.get(keyId) === 'destroyed' || destroyed ? 'destroyed' : 'absent');
        }
      }
    }
    return keyIds.map((keyId) => ({ keyId, status: status.get(keyId)! }));
  }

  async *listKeys(): AsyncIterable<string> {
    for await (const entry of await fs.opendir(this.dir)) {
      if (!entry.isFile()) continue;
      const keyId = dataKeyIdOf(entry.name);
      if (keyId !== undefined) yield keyId;
      const pageId = pageIdOf(entry.name);
      if (pageId === undefined) continue;
      const page = await readOptional(this.pagePath(pageId));
      if (page === undefined) continue;
      for (let slot = 0; slot * DATA_KEY_FILE_BYTES < page.length; slot++) {
        const bytes = slotOf(page, slot);
        if (bytes !== undefined && !isZeroed(bytes)) yield pageKeyId(pageId, slot);
      }
    }
  }

  async stats(): Promise<KeyStoreStats> {
    let keys = 0;
    let allocatedBytes = (await fs.stat(this.dir)).blocks * 512;
    for (const name of await fs.readdir(this.dir)) {
      if (dataKeyIdOf(name) === undefined && pageIdOf(name) === undefined) continue;
      const stat = await fs.lstat(join(this.dir, name)).catch(() => undefined);
      if (stat !== undefined) allocatedBytes += stat.blocks * 512;
    }
    for await (const keyId of this.listKeys()) {
      void keyId;
      keys++;
    }
    return { keys, bytes: keys * DATA_KEY_FILE_BYTES, allocatedBytes };
  }

  private pagePath(pageId: string): string {
    return join(this.dir, `${pageId}${KEY_PAGE_SUFFIX}`);
  }

  async getLookupKey(): Promise<Buffer> {
    return Buffer.from(this.#lookupKey);
  }
}

/** The associated data of a wrapped data key: its id, so that a key file renamed to another id is refused. */
function dataKeyAssociatedData(keyId: string): Buffer {
  return encodeParts(['lethe/keystore/v1 data key', keyId]);
}

export function wrapDataKey(wrappingKey: Buffer, keyId: string, dataKey: Buffer): Buffer {
  return sealPayload(wrappingKey, dataKey, dataKeyAssociatedData(keyId));
}

export function unwrapDataKey(wrappingKey: Buffer, keyId: string, bytes: Buffer, path: string): Buffer {
  const corrupt = (why: string): KeyStoreError =>
    new KeyStoreError('CORRUPT_KEY', `key ${keyId} is corrupt: ${why} (${path})`, { keyId, path, got: bytes.length, want: DATA_KEY_FILE_BYTES });
  if (bytes.length !== DATA_KEY_FILE_BYTES) throw corrupt(`its file has ${bytes.length} bytes, want ${DATA_KEY_FILE_BYTES}`);
  try {
    return openPayload(wrappingKey, bytes, dataKeyAssociatedData(keyId));
  } catch (error) {
    if (error instanceof KeyStoreError) throw corrupt('its file does not authenticate under the master key (tampered, or wrapped under another id)');
    throw error;
  }
}

function dataKeyIdOf(name: string): string | undefined {
  if (!name.endsWith(DATA_KEY_SUFFIX)) return undefined;
  const keyId = name.slice(0, -DATA_KEY_SUFFIX.length);
  return isKeyId(keyId) ? keyId : undefined;
}

/**
 * Any one stored data key in `dir` (a `.dek` file, or a slot of a key page that still holds a key) with its
 * wrapped bytes and file, or undefined (also when `dir` does not exist).
 */
async function findStoredKey(dir: string): Promise<{ keyId: string; bytes: Buffer; path: string } | undefined> {
  let handle;
  try {
    handle = await fs.opendir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  for await (const entry of handle) {
    const path = join(dir, entry.name);
    const keyId = dataKeyIdOf(entry.name);
    if (keyId !== undefined) {
      const bytes = await readOptional(path);
      if (bytes !== undefined && !isZeroed(bytes)) return { keyId, bytes, path }; // leaving the loop closes the directory
    }
    const pageId = pageIdOf(entry.name);
    const page = pageId === undefined ? undefined : await readOptional(path);
    if (page === undefined) continue;
    for (let slot = 0; slot * DATA_KEY_FILE_BYTES < page.length; slot++) {
      const bytes = slotOf(page, slot);
      if (bytes !== undefined && !isZeroed(bytes)) return { keyId: pageKeyId(pageId!, slot), bytes, path };
    }
  }
  return undefined;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** createKeys' count must be a non-negative integer (INVALID_ARGUMENT naming `count`). */
export function checkKeyCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new KeyStoreError('INVALID_ARGUMENT', `count must be a non-negative integer, got ${count}`, { field: 'count' });
  }
}

/** `size` fresh data keys of page `pageId` from slot `first` on, and their wrapped bytes one after another. */
export function makeSlots(wrappingKey: Buffer, pageId: string, first: number, size: number): { slots: Buffer; keys: CreatedKey[] } {
  const slots = Buffer.alloc(size * DATA_KEY_FILE_BYTES);
  const keys: CreatedKey[] = [];
  for (let i = 0; i < size; i++) {
    const keyId = pageKeyId(pageId, first + i);
    const dataKey = randomBytes(KEY_BYTES);
    wrapDataKey(wrappingKey, keyId, dataKey).copy(slots, i * DATA_KEY_FILE_BYTES);
    keys.push({ keyId, dataKey });
  }
  return { slots, keys };
}

export function keyExists(keyId: string): KeyStoreError {
  return new KeyStoreError('KEY_EXISTS', `key ${keyId} exists already; a data key is never overwritten`, { keyId, field: 'keyId' });
}

export function keyNotFound(keyId: string): KeyStoreError {
  return new KeyStoreError('KEY_NOT_FOUND', `key ${keyId} is not in the key store (destroyed, or never created)`, { keyId, field: 'keyId' });
}

/** The wrapped key in `slot` of a page's bytes, or undefined beyond its end. */
function slotOf(page: Buffer, slot: number): Buffer | undefined {
  const start = slot * DATA_KEY_FILE_BYTES;
  return start + DATA_KEY_FILE_BYTES <= page.length ? page.subarray(start, start + DATA_KEY_FILE_BYTES) : undefined;
}

/** The bytes of `slot` of the page at `path`, or undefined when there is no such page or slot. */
async function readSlot(path: string, slot: number): Promise<Buffer | undefined> {
  const handle = await openIfPresent(path, 'r');
  if (!handle) return undefined;
  try {
    const bytes = Buffer.alloc(DATA_KEY_FILE_BYTES);
    const { bytesRead } = await handle.read(bytes, 0, DATA_KEY_FILE_BYTES, slot * DATA_KEY_FILE_BYTES);
    return bytesRead === DATA_KEY_FILE_BYTES ? bytes : undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Overwrites `slots` of the page `dir/name` with zeros and syncs it (once), then removes the page durably
 * when every slot is zero. Returns, per slot, whether it held a key before; undefined when there is no page.
 */
async function zeroSlots(dir: string, name: string, slots: number[]): Promise<boolean[] | undefined> {
  const handle = await openIfPresent(join(dir, name), 'r+');
  if (!handle) return undefined;
  let page: Buffer;
  const held: boolean[] = [];
  try {
    page = await handle.readFile();
    const zeros = Buffer.alloc(DATA_KEY_FILE_BYTES);
    for (const slot of slots) {
      const bytes = slotOf(page, slot);
      held.push(bytes !== undefined && !isZeroed(bytes));
      if (bytes === undefined || isZeroed(bytes)) continue;
      await handle.write(zeros, 0, DATA_KEY_FILE_BYTES, slot * DATA_KEY_FILE_BYTES);
      bytes.fill(0);
    }
    if (held.some(Boolean)) await handle.datasync();
  } finally {
    await handle.close();
  }
  if (isZeroed(page)) await destroyFile(dir, name);
  return held;
}

export function isZeroed(bytes: Buffer): boolean {
  return bytes.every((b) => b === 0);
}

export async function readMasterKeyFile(dir: string): Promise<Buffer | undefined> {
  const path = join(dir, MASTER_KEY_FILE);
  const bytes = await readOptional(path);
  return bytes === undefined ? undefined : parseMasterKey(bytes.toString('utf8'), { path, variable: MASTER_KEY_VARIABLE });
}

function formatKeyCheck(keyCheck: Buffer): Buffer {
  return Buffer.from(`${JSON.stringify({ version: KEY_CHECK_VERSION, kdf: 'HKDF-SHA-256', check: keyCheck.toString('hex') })}\n`);
}

async function readKeyCheck(dir: string): Promise<Buffer | undefined> {
  const path = join(dir, KEY_CHECK_FILE);
  const bytes = await readOptional(path);
  if (bytes === undefined) return undefined;
  let parsed: { version?: unknown; check?: unknown } | undefined;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (parsed?.version !== KEY_CHECK_VERSION || typeof parsed.check !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.check)) {
    throw new KeyStoreError('CORRUPT_KEY_STORE', `${path} is not a key check of version ${KEY_CHECK_VERSION}; nothing was changed`, { path });
  }
  return Buffer.from(parsed.check, 'hex');
}

export function wrongMasterKey(dir: string, source: MasterKeySource, why: string): KeyStoreError {
  const named = source === MASTER_KEY_VARIABLE ? MASTER_KEY_VARIABLE : `${join(dir, MASTER_KEY_FILE)} (read because ${MASTER_KEY_VARIABLE} is unset)`;
  return new KeyStoreError('WRONG_MASTER_KEY', `${named} is the wrong master key for the key store in ${dir}: ${why}; nothing was changed`, {
    variable: MASTER_KEY_VARIABLE,
    path: dir,
  });
}

async function verifyKeyCheck(dir: string, source: MasterKeySource, subKeys: SubKeys, check: Buffer): Promise<void> {
  if (timingSafeEqual(subKeys.keyCheck, check)) return;
  const hint =
    source === MASTER_KEY_VARIABLE && (await readOptional(join(dir, MASTER_KEY_FILE))) !== undefined
      ? ` (${join(dir, MASTER_KEY_FILE)} exists: unset ${MASTER_KEY_VARIABLE} to use it)`
      : '';
  throw wrongMasterKey(dir, source, `it does not match ${KEY_CHECK_FILE}, so its keys were wrapped under another one${hint}`);
}

/** Without a key check (a crash before it was written), any stored data key must unwrap under this master key. */
async function verifyAgainstDataKey(dir: string, source: MasterKeySource, subKeys: SubKeys): Promise<void> {
  const stored = await findStoredKey(dir);
  if (stored === undefined) return;
  try {
    unwrapDataKey(subKeys.wrappingKey, stored.keyId, stored.bytes, stored.path).fill(0);
  } catch (error) {
    if (error instanceof KeyStoreError && error.code === 'CORRUPT_KEY') {
      throw wrongMasterKey(dir, source, `${KEY_CHECK_FILE} is missing and key ${stored.keyId} does not unwrap under it`);
    }
    throw error;
  }
}

/** Creates `dir` with mode 700 (its parent as needed) and makes its entry durable. */
async function ensureDirectory(dir: string): Promise<void> {
  await fs.mkdir(dirname(dir), { recursive: true });
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  await syncDirectory(dirname(dir));
}

/** Removes group and other permissions a file or directory should not have. */
async function tightenMode(path: string, mode: number): Promise<void> {
  const stat = await fs.stat(path);
  if ((stat.mode & 0o777) !== mode) await fs.chmod(path, mode);
}
