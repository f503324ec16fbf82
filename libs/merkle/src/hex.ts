import { HASH_SIZE } from './hash';
import { MerkleError } from './errors';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

/**
 * Parses a 32-byte hash from hex (either case, no 0x prefix). `what` names it in errors (`root1`,
 * `leafHash`, ...). Throws MerkleError INVALID_ARGUMENT naming `what` for non-hex text or a wrong length.
 */
export function fromHex(hex: string, what = 'hash'): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new MerkleError('INVALID_ARGUMENT', `${what} is not hex: ${JSON.stringify(String(hex).slice(0, 80))}`, {
      field: what,
    });
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (bytes.length !== HASH_SIZE) {
    throw new MerkleError('INVALID_ARGUMENT', `${what} has ${bytes.length} bytes, want ${HASH_SIZE}`, {
      field: what,
      got: bytes.length,
      want: HASH_SIZE,
    });
  }
  return bytes;
}
