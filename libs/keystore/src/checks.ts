import { KeyStoreError } from './errors';
import { KEY_BYTES } from './primitives';

/** Throws INVALID_ARGUMENT unless `key` is a Uint8Array of 32 bytes: `dataKey has 16 bytes, want 32`. */
export function checkKey(key: unknown, field: string): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) throw new KeyStoreError('INVALID_ARGUMENT', `${field} must be bytes`, { field });
  if (key.length !== KEY_BYTES) {
    throw new KeyStoreError('INVALID_ARGUMENT', `${field} has ${key.length} bytes, want ${KEY_BYTES}`, {
      field,
      got: key.length,
      want: KEY_BYTES,
    });
  }
}

/** Throws INVALID_ARGUMENT unless `value` is a Uint8Array. */
export function checkBytes(value: unknown, field: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new KeyStoreError('INVALID_ARGUMENT', `${field} must be bytes`, { field });
}
