import { checkKey } from './checks';
import { encodeParts } from './encoding';
import { KeyStoreError } from './errors';
import { computeHmacSha256 } from './primitives';

/**
 * A keyed hash of an identifier, to store and look up instead of the identifier:
 * HMAC-SHA-256(lookupKey, encode(['lethe/lookup/v1', ...domain, value])) as lowercase hex. The domain
 * separates uses, so the same value hashes differently as an externalId and as a subjectId, and in one
 * dataset and another: `lookupHash(key, ['externalId', datasetId], externalId)`. Without the lookup key
 * nobody can test a guess against the hash; with it, anyone can, for as long as the hash is stored.
 */
export function lookupHash(lookupKey: Uint8Array, domain: string | readonly string[], value: string): string {
  checkKey(lookupKey, 'lookupKey');
  const parts = typeof domain === 'string' ? [domain] : domain;
  if (parts.length === 0 || parts.some((p) => typeof p !== 'string' || p === '')) {
    throw new KeyStoreError('INVALID_ARGUMENT', 'domain must be one or more non-empty strings', { field: 'domain' });
  }
  if (typeof value !== 'string') throw new KeyStoreError('INVALID_ARGUMENT', 'value must be a string', { field: 'value' });
  return computeHmacSha256(lookupKey, encodeParts(['lethe/lookup/v1', ...parts, value])).toString('hex');
}
