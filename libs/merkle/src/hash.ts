// RFC 9162 section 2.1.1 hashing over SHA-256. Every SHA-256 in this library goes through `sha256` or
// `sha256Into` below, which use digest.ts (node:crypto); browser bundles swap in digest.browser.ts.
import { digestLatin1 } from './digest';
import { MerkleError } from './errors';

export const HASH_SIZE = 32;
export const LEAF_HASH_PREFIX = 0x00;
export const NODE_HASH_PREFIX = 0x01;

/** SHA-256 of one input, written into `out` at `offset` (32 bytes). */
export function sha256Into(data: Uint8Array, out: Uint8Array, offset: number): void {
  const digest = digestLatin1(data);
  for (let i = 0; i < HASH_SIZE; i++) out[offset + i] = digest.charCodeAt(i);
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(HASH_SIZE);
  sha256Into(parts.length === 1 ? parts[0] : concat(parts), out, 0);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const all = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  if (!isBytes(data)) {
    throw new MerkleError('INVALID_ARGUMENT', 'leaf data is not a Uint8Array', { field: 'data' });
  }
  const input = new Uint8Array(1 + data.length);
  input[0] = LEAF_HASH_PREFIX;
  input.set(data, 1);
  return sha256(input);
}

// One reusable input buffer for node hashes: prefix, left, right.
const nodeInput = new Uint8Array(1 + 2 * HASH_SIZE);
nodeInput[0] = NODE_HASH_PREFIX;

/** SHA-256(0x01 || left || right); both must be 32-byte hashes. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  checkHash(left, 'left');
  checkHash(right, 'right');
  return hashChildrenUnchecked(left, right);
}

/** hashChildren for hashes already checked to be 32 bytes (hot loops inside this library). */
export function hashChildrenUnchecked(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  const out = new Uint8Array(HASH_SIZE);
  sha256Into(nodeInput, out, 0);
  return out;
}

/**
 * Hashes `count` parents from `children` (2 * count consecutive 32-byte hashes starting at byte
 * `childOffset`) into `out` from byte `outOffset`: one level of a tree stored as contiguous hashes.
 */
export function hashLevelInto(children: Uint8Array, childOffset: number, count: number, out: Uint8Array, outOffset: number): void {
  for (let i = 0; i < count; i++) {
    const from = childOffset + 2 * HASH_SIZE * i;
    nodeInput.set(children.subarray(from, from + 2 * HASH_SIZE), 1);
    sha256Into(nodeInput, out, outOffset + HASH_SIZE * i);
  }
}

/** Throws INVALID_ARGUMENT unless `hash` is a 32-byte Uint8Array. */
export function checkHash(
  hash: unknown,
  field: string,
  code: 'INVALID_ARGUMENT' | 'BAD_PROOF' = 'INVALID_ARGUMENT',
): asserts hash is Uint8Array {
  if (!isBytes(hash)) {
    throw new MerkleError(code, `${field} is not a Uint8Array`, { field });
  }
  if (hash.length !== HASH_SIZE) {
    throw new MerkleError(code, `${field} has ${hash.length} bytes, want ${HASH_SIZE}`, {
      field,
      got: hash.length,
      want: HASH_SIZE,
    });
  }
}

/** Byte equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A copy as a plain Uint8Array (Buffer's slice() would be a view). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Whether `value` is a Uint8Array (or Buffer), also one from another realm (vm context, iframe). */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array || (ArrayBuffer.isView(value) && ['Uint8Array', 'Buffer'].includes(value.constructor?.name));
}
