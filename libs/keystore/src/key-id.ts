import { randomBytes } from 'node:crypto';
import { KeyStoreError } from './errors';

const KEY_ID = /^[0-9a-f]{64}$/;

/**
 * Throws INVALID_ARGUMENT unless `keyId` is 64 lowercase hex characters. Key ids are opaque: a random id
 * (`createKeyId`) or a keyed hash, never an identifier of a person; the format keeps them so (and makes
 * them safe file names).
 */
export function checkKeyId(keyId: unknown): asserts keyId is string {
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
    throw new KeyStoreError('INVALID_ARGUMENT', 'keyId must be 64 lowercase hex characters (a random or keyed-hash id)', {
      field: 'keyId',
      got: typeof keyId === 'string' ? keyId.length : undefined,
      want: 64,
    });
  }
}

/** True for a well-formed key id. */
export function isKeyId(value: string): boolean {
  return KEY_ID.test(value);
}

/** A fresh random key id: 32 random bytes as lowercase hex. */
export function createKeyId(): string {
  return randomBytes(32).toString('hex');
}
