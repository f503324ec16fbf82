// The standard algorithms, each used directly from node:crypto (OpenSSL) and nowhere else in this library,
// so that the published test vectors (primitives.spec.ts) show they are wired as claimed.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';

/** AES-256 keys, HMAC-SHA-256 keys and HKDF outputs used as keys: 32 bytes. */
export const KEY_BYTES = 32;
/** AES-GCM nonces: 96 bits, the length SP 800-38D recommends (no GHASH of the IV). */
export const NONCE_BYTES = 12;
/** AES-GCM tags: the full 128 bits; shorter tags are refused on decryption. */
export const TAG_BYTES = 16;

/** AES-256-GCM (NIST SP 800-38D) of `plaintext` with additional authenticated data `aad`. */
export function encryptAes256Gcm(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = joined(cipher.update(plaintext), cipher.final());
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** The plaintext, or undefined when the tag does not authenticate ciphertext and aad under key and nonce. */
export function decryptAes256Gcm(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Buffer | undefined {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const head = decipher.update(ciphertext);
  try {
    return joined(head, decipher.final());
  } catch {
    head.fill(0);
    return undefined;
  }
}

/** `head` followed by `tail`; GCM's final() is empty, and then `head` is returned without a copy. */
function joined(head: Buffer, tail: Buffer): Buffer {
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}

/** HKDF-SHA-256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes. */
export function deriveHkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/** HMAC-SHA-256 (RFC 2104, FIPS 198-1). */
export function computeHmacSha256(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
