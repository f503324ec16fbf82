import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Keys are `lethe_` + 32 random bytes in base64url: 256 bits, so one SHA-256 (no slow KDF) is enough. */
export const API_KEY_PREFIX = 'lethe_';

export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Constant-time comparison of two key hashes. */
export function sameKeyHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
