// A slow, obvious RFC 9162 implementation for tests: recursive MTH, PATH and PROOF/SUBPROOF exactly as
// sections 2.1.1, 2.1.3.1 and 2.1.4.1 write them, over leaf hashes. Its hashing is its own (createHash).
import { createHash } from 'node:crypto';

export function refHashLeaf(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(0x00)).update(data).digest());
}

function refHashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(0x01)).update(left).update(right).digest());
}

/** The largest power of two smaller than n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) of leaf hashes. */
export function refRoot(leafHashes: Uint8Array[]): Uint8Array {
  const n = leafHashes.length;
  if (n === 0) return new Uint8Array(createHash('sha256').digest());
  if (n === 1) return leafHashes[0];
  const k = split(n);
  return refHashChildren(refRoot(leafHashes.slice(0, k)), refRoot(leafHashes.slice(k)));
}

export interface RefPathStep {
  hash: Uint8Array;
  /** Whether this sibling is on the left of the path. */
  left: boolean;
}

/** PATH(m, D[n]) with the side of each sibling. */
export function refPathSteps(m: number, leafHashes: Uint8Array[]): RefPathStep[] {
  const n = leafHashes.length;
  if (n <= 1) return [];
  const k = split(n);
  if (m < k) {
    return [...refPathSteps(m, leafHashes.slice(0, k)), { hash: refRoot(leafHashes.slice(k)), left: false }];
  }
  return [...refPathSteps(m - k, leafHashes.slice(k)), { hash: refRoot(leafHashes.slice(0, k)), left: true }];
}

/** PATH(m, D[n]): the inclusion proof of leaf m. */
export function refInclusionProof(m: number, leafHashes: Uint8Array[]): Uint8Array[] {
  return refPathSteps(m, leafHashes).map((step) => step.hash);
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the consistency proof from size m (0 < m <= n). */
export function refConsistencyProof(m: number, leafHashes: Uint8Array[]): Uint8Array[] {
  return subproof(m, leafHashes, true);
}

function subproof(m: number, leafHashes: Uint8Array[], b: boolean): Uint8Array[] {
  const n = leafHashes.length;
  if (m === n) return b ? [] : [refRoot(leafHashes)];
  const k = split(n);
  if (m <= k) return [...subproof(m, leafHashes.slice(0, k), b), refRoot(leafHashes.slice(k))];
  return [...subproof(m - k, leafHashes.slice(k), false), refRoot(leafHashes.slice(0, k))];
}
