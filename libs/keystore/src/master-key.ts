import { randomBytes } from 'node:crypto';
import { KeyStoreError } from './errors';
import { KEY_BYTES, deriveHkdfSha256 } from './primitives';

/** The environment variable that holds the master key. */
export const MASTER_KEY_VARIABLE = 'LETHE_MASTER_KEY';

const HEX = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]{43}=$/;
const BASE64URL = /^[A-Za-z0-9_-]{43}=?$/;

/**
 * The 32-byte master key written as 64 hex characters, or as the base64 (or base64url) of 32 bytes;
 * surrounding whitespace is ignored. Anything else is MALFORMED_MASTER_KEY naming `source` (the variable,
 * or the file the key was read from) and the length given, never the value.
 */
export function parseMasterKey(text: string, source: { variable?: string; path?: string } = { variable: MASTER_KEY_VARIABLE }): Buffer {
  const where = source.variable ?? source.path ?? 'master key';
  const value = typeof text === 'string' ? text.trim() : '';
  let key: Buffer | undefined;
  if (HEX.test(value)) key = Buffer.from(value, 'hex');
  else if (BASE64.test(value)) key = Buffer.from(value, 'base64');
  else if (BASE64URL.test(value)) key = Buffer.from(value, 'base64url');
  if (key === undefined || key.length !== KEY_BYTES) {
    throw new KeyStoreError(
      'MALFORMED_MASTER_KEY',
      `${where} must be 64 hex characters or the base64 of 32 bytes; got ${value.length} characters (the value is not shown)`,
      { ...source, got: value.length },
    );
  }
  if (key.every((byte) => byte === 0)) {
    throw new KeyStoreError('MALFORMED_MASTER_KEY', `${where} is all zero bytes, which is a placeholder, not a key`, source);
  }
  return key;
}

/** A fresh random master key. */
export function createMasterKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** The master key as it is written to master.key: 64 lowercase hex characters and a newline. */
export function formatMasterKey(key: Uint8Array): string {
  return `${Buffer.from(key).toString('hex')}\n`;
}

/** The keys derived from the master key; the master key itself is used for nothing else. */
export interface SubKeys {
  /** Wraps (AES-256-GCM) every data key of the key store. */
  wrappingKey: Buffer;
  /** Keys the HMAC-SHA-256 lookup hashes of identifiers (`lookupHash`). */
  lookupKey: Buffer;
  /** Stored beside the keys (master.check) so that a wrong master key is refused at open. */
  keyCheck: Buffer;
}

/** HKDF `info` labels: one per sub-key, so that no two uses share a key. */
export const SUB_KEY_LABELS = {
  wrappingKey: 'lethe/keystore/v1 wrapping key',
  lookupKey: 'lethe/keystore/v1 lookup key',
  keyCheck: 'lethe/keystore/v1 key check',
} as const;

/**
 * HKDF-SHA-256 (RFC 5869) of the master key, one expansion per label. The salt is empty (RFC 5869 2.2:
 * a string of zeros): the master key is already uniformly random, and extraction with a zero salt keeps
 * the derivation reproducible from the key alone. The key check is a PRF output: it reveals nothing
 * about the master key or the other sub-keys.
 */
export function deriveSubKeys(masterKey: Uint8Array): SubKeys {
  const derive = (label: string): Buffer => deriveHkdfSha256(masterKey, Buffer.alloc(0), Buffer.from(label, 'utf8'), KEY_BYTES);
  return {
    wrappingKey: derive(SUB_KEY_LABELS.wrappingKey),
    lookupKey: derive(SUB_KEY_LABELS.lookupKey),
    keyCheck: derive(SUB_KEY_LABELS.keyCheck),
  };
}
