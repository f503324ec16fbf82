/** What went wrong, for callers to branch on (never on the message text). */
export type KeyStoreErrorCode =
  /** An argument is malformed: a key id that is not 64 lowercase hex characters, a key that is not 32 bytes. */
  | 'INVALID_ARGUMENT'
  /** LETHE_MASTER_KEY (or DATA_DIR/keys/master.key) is not 64 hex characters or the base64 of 32 bytes. */
  | 'MALFORMED_MASTER_KEY'
  /** The master key does not match the key check of the key store: its keys were wrapped under another one. */
  | 'WRONG_MASTER_KEY'
  /** The key store holds keys (or a key check) but there is no master key: LETHE_MASTER_KEY unset, no master.key. */
  | 'MASTER_KEY_MISSING'
  /** A file of the key store other than a data key (the key check) is unreadable. */
  | 'CORRUPT_KEY_STORE'
  /** No data key under this id: destroyed, or never created. */
  | 'KEY_NOT_FOUND'
  /** A data key under this id exists already (a data key is never overwritten). */
  | 'KEY_EXISTS'
  /** A data key's file fails authentication or has the wrong size (tampered or truncated). */
  | 'CORRUPT_KEY'
  /** A sealed payload is too short or has an unknown version byte. */
  | 'MALFORMED_PAYLOAD'
  /** A sealed payload fails authentication: tampered, another row's associated data, or another key. */
  | 'PAYLOAD_AUTH_FAILED';

export interface KeyStoreErrorDetails {
  /** The argument at fault, e.g. `keyId`, `dataKey`, `sealed`. */
  field?: string;
  /** The data key at fault (KEY_NOT_FOUND, KEY_EXISTS, CORRUPT_KEY). */
  keyId?: string;
  /** The file at fault (never its contents). */
  path?: string;
  /** The environment variable at fault (never its value): LETHE_MASTER_KEY. */
  variable?: string;
  /** What was given and what was wanted, where a length is at fault. */
  got?: number;
  want?: number;
}

/** Errors of libs/keystore. Messages and fields name keys by id and variables by name, never by value. */
export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
  readonly field?: string;
  readonly keyId?: string;
  readonly path?: string;
  readonly variable?: string;
  readonly got?: number;
  readonly want?: number;

  constructor(readonly code: KeyStoreErrorCode, message: string, details: KeyStoreErrorDetails = {}) {
    super(message);
    this.field = details.field;
    this.keyId = details.keyId;
    this.path = details.path;
    this.variable = details.variable;
    this.got = details.got;
    this.want = details.want;
  }
}
