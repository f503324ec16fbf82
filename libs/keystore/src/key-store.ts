/**
 * Per-subject data keys behind one interface: the default keeps them in files wrapped under a master key
 * (FileKeyStore); a KMS or Vault Transit implementation keeps the same promises with the key material held
 * by the service it calls (see README.md, "Another key store").
 *
 * Key ids are opaque 64-hex strings chosen by the caller (random, or a keyed hash): never a subjectId or an
 * externalId, which the key store must not learn.
 */
export interface KeyStore {
  /**
   * Makes a fresh random 32-byte data key under `keyId`, durable before this returns, and returns it for
   * immediate use. KEY_EXISTS if the id is taken: a data key is never overwritten.
   */
  createKey(keyId: string): Promise<Buffer>;

  /**
   * Makes `count` fresh random data keys under ids the store chooses, all durable before this returns, in
   * one write where the store can (FileKeyStore: one key page for all of them). For bulk uploads, where each
   * sample without a subject is a subject of its own: one key each, without one file and two fsyncs each.
   */
  createKeys(count: number): Promise<CreatedKey[]>;

  /** The data key under `keyId`, unwrapped. KEY_NOT_FOUND once destroyed; CORRUPT_KEY if it does not authenticate. */
  getKey(keyId: string): Promise<Buffer>;

  /**
   * The data keys under `keyIds` that are stored (a destroyed or unknown id is left out of the map), read
   * together (FileKeyStore: each key page once). CORRUPT_KEY as getKey.
   */
  getKeys(keyIds: readonly string[]): Promise<Map<string, Buffer>>;

  /** Whether a data key is stored under `keyId`. */
  hasKey(keyId: string): Promise<boolean>;

  /**
   * Destroys the data key under `keyId`, durably before this returns: afterwards nothing this key store
   * holds can give it back. Idempotent: a key already gone answers `status: 'absent'`.
   */
  destroyKey(keyId: string): Promise<DestroyKeyResult>;

  /** destroyKey for each id, durably before this returns (FileKeyStore: one sync per key page touched). */
  destroyKeys(keyIds: readonly string[]): Promise<DestroyKeyResult[]>;

  /**
   * Runs `run` as one erasure pass: the destructions it makes (in its own async calls, not others running
   * meanwhile) are durable as each returns, and what a store does after them to clear their old copies
   * (PostgresKeyStore: VACUUM FULL of its table) is done once, when `run` ends (also when it throws).
   */
  inErasurePass<T>(run: () => Promise<T>): Promise<T>;

  /** The ids of every stored data key, in no particular order. */
  listKeys(): AsyncIterable<string>;

  /** How many data keys are stored and what they take up. */
  stats(): Promise<KeyStoreStats>;

  /** The server lookup key, for `lookupHash` of identifiers; the same for the life of the master key. */
  getLookupKey(): Promise<Buffer>;
}

export interface CreatedKey {
  keyId: string;
  dataKey: Buffer;
}

export interface DestroyKeyResult {
  keyId: string;
  /** `destroyed` by this call, or `absent`: destroyed before, or never created. */
  status: 'destroyed' | 'absent';
}

export interface KeyStoreStats {
  /** Number of data keys. */
  keys: number;
  /** Their stored size in bytes (the wrapped keys themselves). */
  bytes: number;
  /** What they take on disk: allocated blocks of the key files and of their directory; undefined where unknown (a KMS). */
  allocatedBytes?: number;
}
