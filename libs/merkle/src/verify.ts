// Checking proofs (RFC 9162 sections 2.1.3.2 and 2.1.4.2), after transparency-dev/merkle's proof package.
import { bitIsSet, bitLength, popCount, shiftRight, trailingZeros, xor } from './bits';
import { checkIndex, checkSizes } from './checks';
import { MerkleError } from './errors';
import { checkHash, equalBytes, hashChildrenUnchecked as hashChildren } from './hash';
import { toHex } from './hex';
import { checkNotEmpty } from './proof';

/** The root that an inclusion proof of `leafHash` at `index` in a tree of `size` leaves leads to. */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: Uint8Array[],
): Uint8Array {
  checkIndex(index, size);
  checkHash(leafHash, 'leafHash');
  const { inner, border } = decomposeInclusionProof(index, size);
  checkProof(proof, inner + border);
  let hash = chainInner(leafHash, proof, 0, inner, index);
  hash = chainBorderRight(hash, proof, inner, inner + border);
  return hash;
}

/** Throws MerkleError unless `proof` proves `leafHash` is leaf `index` of the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): void {
  const calculated = rootFromInclusionProof(index, size, leafHash, proof);
  checkHash(root, 'root');
  checkMatch(calculated, root, 'root');
}

/**
 * Throws MerkleError unless `proof` proves that the tree of `size2` with `root2` extends the tree of `size1`
 * with `root1`. Conventions (as the shared vectors pin them): there is no proof from size1 = 0; equal sizes
 * need an empty proof and byte-equal roots.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkSizes(size1, size2);
  checkNotEmpty(size1);
  if (size1 === size2) {
    // Nothing is hashed here, so the roots are only compared (the shared vector
    // sizes-are-equal-one-and-proof-is-empty accepts equal 12-byte roots).
    checkProof(proof, 0);
    checkMatch(root2, root1, 'root2');
    return;
  }
  checkHash(root1, 'root1');
  checkHash(root2, 'root2');

  // The proof is, after its optional first hash, a suffix of the inclusion proof of leaf size1 - 1 in the
  // tree of size2 that starts at the level of the biggest perfect subtree ending at size1.
  const decomposition = decomposeInclusionProof(size1 - 1, size2);
  const shift = trailingZeros(size1);
  const inner = decomposition.inner - shift;
  const { border } = decomposition;
  // Unless size1 is a power of two (then it is root1), that subtree's hash is the proof's first hash.
  const start = size1 === 2 ** shift ? 0 : 1;
  checkProof(proof, start + inner + border);
  const seed = start === 0 ? root1 : proof[0];

  const mask = shiftRight(size1 - 1, shift);
  let hash1 = chainInnerRight(seed, proof, start, start + inner, mask);
  hash1 = chainBorderRight(hash1, proof, start + inner, proof.length);
  checkMatch(hash1, root1, 'root1');

  let hash2 = chainInner(seed, proof, start, start + inner, mask);
  hash2 = chainBorderRight(hash2, proof, start + inner, proof.length);
  checkMatch(hash2, root2, 'root2');
}

/**
 * An inclusion proof has `inner` hashes below the level where the paths to `index` and to the last leaf
 * meet, then `border` hashes of left siblings on the way up the right edge.
 */
export function decomposeInclusionProof(index: number, size: number): { inner: number; border: number } {
  const inner = bitLength(xor(index, size - 1));
  const border = popCount(shiftRight(index, inner));
  return { inner, border };
}

function checkProof(proof: unknown, want: number): asserts proof is Uint8Array[] {
  if (!Array.isArray(proof)) {
    throw new MerkleError('BAD_PROOF', 'proof is not an array', { field: 'proof' });
  }
  if (proof.length !== want) {
    throw new MerkleError('BAD_PROOF', `proof has ${proof.length} hashes, want ${want}`, {
      field: 'proof',
      got: proof.length,
      want,
    });
  }
  proof.forEach((hash, i) => checkHash(hash, `proof[${i}]`, 'BAD_PROOF'));
}

function checkMatch(calculated: Uint8Array, expected: Uint8Array, field: string): void {
  if (!equalBytes(calculated, expected)) {
    throw new MerkleError(
      'ROOT_MISMATCH',
      `calculated ${field} ${toHex(calculated)} does not match ${toHex(expected)}`,
      {
        field,
        expectedRoot: toHex(expected),
        calculatedRoot: toHex(calculated),
      },
    );
  }
}

// The proof's hashes and the seed are checked to be 32 bytes before these run.

// Hashes the seed with proof[from..to): at level i the seed is the left child when bit i of index is 0.
function chainInner(seed: Uint8Array, proof: Uint8Array[], from: number, to: number, index: number): Uint8Array {
  for (let i = from; i < to; i++) {
    seed = bitIsSet(index, i - from) ? hashChildren(proof[i], seed) : hashChildren(seed, proof[i]);
  }
  return seed;
}

// Like chainInner, but only the levels where the seed is a right child (the tree of size1 ends there).
function chainInnerRight(seed: Uint8Array, proof: Uint8Array[], from: number, to: number, index: number): Uint8Array {
  for (let i = from; i < to; i++) {
    if (bitIsSet(index, i - from)) seed = hashChildren(proof[i], seed);
  }
  return seed;
}

function chainBorderRight(seed: Uint8Array, proof: Uint8Array[], from: number, to: number): Uint8Array {
  for (let i = from; i < to; i++) seed = hashChildren(proof[i], seed);
  return seed;
}
