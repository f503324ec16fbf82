import { randomBytes } from 'node:crypto';
import { KeyStoreError, lookupHash } from './index';

const key = randomBytes(32);

describe('lookupHash', () => {
  it('is 64 lowercase hex characters, the same for the same key, domain and value', () => {
    const hash = lookupHash(key, ['externalId', 'ds-1'], 'sample-1');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(lookupHash(key, ['externalId', 'ds-1'], 'sample-1')).toBe(hash);
  });

  it('separates domains: externalId from subjectId, one dataset from another, one key from another', () => {
    const hashes = [
      lookupHash(key, ['externalId', 'ds-1'], 'alice'),
      lookupHash(key, ['subjectId', 'ds-1'], 'alice'),
      lookupHash(key, ['externalId', 'ds-2'], 'alice'),
      lookupHash(key, 'externalId', 'alice'),
      lookupHash(key, ['externalId', 'ds-1a'], 'lice'),
      lookupHash(randomBytes(32), ['externalId', 'ds-1'], 'alice'),
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('does not contain the value', () => {
    expect(lookupHash(key, 'subjectId', 'alice@example.com')).not.toContain('alice');
  });

  it('refuses a bad key or an empty domain', () => {
    expect(() => lookupHash(key.subarray(0, 31), 'externalId', 'x')).toThrow('lookupKey has 31 bytes, want 32');
    for (const domain of [[], '', ['externalId', '']]) {
      expect(() => lookupHash(key, domain, 'x')).toThrow(KeyStoreError);
    }
  });
});
