// Property tests against the slow reference (testing/reference-tree.ts) on random trees.
import fc from 'fast-check';

import {
  CompactRange,
  MerkleError,
  MerkleTree,
  hashLeaf,
  inclusionProofNodes,
  rootFromInclusionProof,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './index';
import { refConsistencyProof, refHashLeaf, refInclusionProof, refPathSteps, refRoot } from './testing/reference-tree';

const hex = (hashes: Uint8Array[]): string[] => hashes.map(toHex);

/** Distinct random leaves: leaf i is its index plus random bytes. */
function leafHashesOf(size: number, salt: number): Uint8Array[] {
  return Array.from({ length: size }, (_, i) => refHashLeaf(Buffer.from(`${salt}:${i}`)));
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

function rejects(run: () => void): boolean {
  try {
    run();
    return false;
  } catch (error) {
    if (!(error instanceof MerkleError)) throw error;
    return true;
  }
}

const sizeArb = fc.integer({ min: 1, max: 300 });
const saltArb = fc.integer();

describe('MerkleTree against the RFC 9162 reference', () => {
  it('has the reference root for every size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), saltArb, (size, salt) => {
        const leaves = leafHashesOf(size, salt);
        expect(toHex(MerkleTree.fromLeafHashes(leaves).root())).toBe(toHex(refRoot(leaves)));
      }),
    );
  });

  it('builds inclusion proofs equal to PATH that verify', () => {
    fc.assert(
      fc.property(sizeArb, fc.nat(), saltArb, (size, i, salt) => {
        const leaves = leafHashesOf(size, salt);
        const tree = MerkleTree.fromLeafHashes(leaves);
        const index = i % size;
        const proof = tree.inclusionProof(index);
        expect(hex(proof)).toEqual(hex(refInclusionProof(index, leaves)));
        verifyInclusion(index, size, leaves[index], proof, refRoot(leaves));
      }),
    );
  });

  it('builds consistency proofs equal to PROOF that verify', () => {
    fc.assert(
      fc.property(sizeArb, fc.nat(), saltArb, (size2, s, salt) => {
        const leaves = leafHashesOf(size2, salt);
        const tree = MerkleTree.fromLeafHashes(leaves);
        const size1 = 1 + (s % size2);
        const proof = tree.consistencyProof(size1, size2);
        expect(hex(proof)).toEqual(hex(refConsistencyProof(size1, leaves)));
        verifyConsistency(size1, size2, proof, refRoot(leaves.slice(0, size1)), refRoot(leaves));
      }),
    );
  });

  it('answers for every earlier size from one tree, also after appends', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 0, max: 80 }),
        saltArb,
        (built, appended, salt) => {
          const leaves = leafHashesOf(built + appended, salt);
          const tree = MerkleTree.fromLeafHashes(leaves.slice(0, built));
          leaves.slice(built).forEach((leaf) => tree.append(leaf));
          for (let size = 1; size <= tree.size; size++) {
            expect(toHex(tree.root(size))).toBe(toHex(refRoot(leaves.slice(0, size))));
            const index = (salt >>> 0) % size;
            expect(hex(tree.inclusionProof(index, size))).toEqual(hex(refInclusionProof(index, leaves.slice(0, size))));
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('inclusion verification rejects any one-bit change', () => {
  const caseArb = fc.record({ size: sizeArb, i: fc.nat(), salt: saltArb, bit: fc.nat() });

  it('to a proof hash, the root or the leaf hash', () => {
    fc.assert(
      fc.property(caseArb, ({ size, i, salt, bit }) => {
        const leaves = leafHashesOf(size, salt);
        const index = i % size;
        const proof = refInclusionProof(index, leaves);
        const root = refRoot(leaves);
        const b = bit % 256;
        expect(rejects(() => verifyInclusion(index, size, leaves[index], proof, flipBit(root, b)))).toBe(true);
        expect(rejects(() => verifyInclusion(index, size, flipBit(leaves[index], b), proof, root))).toBe(true);
        proof.forEach((_, k) => {
          const bad = proof.map((hash, j) => (j === k ? flipBit(hash, b) : hash));
          expect(rejects(() => verifyInclusion(index, size, leaves[index], bad, root))).toBe(true);
        });
      }),
    );
  });

  it('to the index', () => {
    fc.assert(
      fc.property(caseArb, ({ size, i, salt, bit }) => {
        const leaves = leafHashesOf(size, salt);
        const index = i % size;
        const proof = refInclusionProof(index, leaves);
        const changed = index ^ (1 << bit % 10);
        expect(rejects(() => verifyInclusion(changed, size, leaves[index], proof, refRoot(leaves)))).toBe(true);
      }),
    );
  });

  // An inclusion proof binds the size only through the shape of the path (RFC 9162 section 2.1.3.2): a
  // changed size whose path has the very same sides (e.g. leaf 0 of 5 and of 7) computes the same root, so
  // it is accepted against the original root. The root of the changed size itself is always rejected.
  it('to the size, unless the path has the same shape; always against the changed size root', () => {
    fc.assert(
      fc.property(caseArb, ({ size, i, salt, bit }) => {
        const changed = size ^ (1 << bit % 10);
        fc.pre(changed > 0);
        const leaves = leafHashesOf(Math.max(size, changed), salt);
        const tree = leaves.slice(0, size);
        const index = i % size;
        const proof = refInclusionProof(index, tree);
        const sameShape =
          index < changed &&
          JSON.stringify(refPathSteps(index, tree).map((s) => s.left)) ===
            JSON.stringify(refPathSteps(index, leaves.slice(0, changed)).map((s) => s.left));
        expect(rejects(() => verifyInclusion(index, changed, tree[index], proof, refRoot(tree)))).toBe(!sameShape);
        const changedRoot = refRoot(leaves.slice(0, changed));
        expect(rejects(() => verifyInclusion(index, changed, tree[index], proof, changedRoot))).toBe(true);
      }),
    );
  });

  it('accepts leaf 0 of 5 as leaf 0 of 7 with the root of 5 (the size is not bound)', () => {
    const leaves = leafHashesOf(7, 1);
    const proof = refInclusionProof(0, leaves.slice(0, 5));
    expect(() => verifyInclusion(0, 7, leaves[0], proof, refRoot(leaves.slice(0, 5)))).not.toThrow();
    expect(() => verifyInclusion(0, 7, leaves[0], proof, refRoot(leaves))).toThrow(MerkleError);
  });
});

describe('consistency verification rejects any one-bit change', () => {
  const caseArb = fc.record({ size2: fc.integer({ min: 2, max: 300 }), s: fc.nat(), salt: saltArb, bit: fc.nat() });

  it('to a proof hash, root1 or root2', () => {
    fc.assert(
      fc.property(caseArb, ({ size2, s, salt, bit }) => {
        const leaves = leafHashesOf(size2, salt);
        const size1 = 1 + (s % (size2 - 1));
        const proof = refConsistencyProof(size1, leaves);
        const root1 = refRoot(leaves.slice(0, size1));
        const root2 = refRoot(leaves);
        const b = bit % 256;
        expect(rejects(() => verifyConsistency(size1, size2, proof, flipBit(root1, b), root2))).toBe(true);
        expect(rejects(() => verifyConsistency(size1, size2, proof, root1, flipBit(root2, b)))).toBe(true);
        proof.forEach((_, k) => {
          const bad = proof.map((hash, j) => (j === k ? flipBit(hash, b) : hash));
          expect(rejects(() => verifyConsistency(size1, size2, bad, root1, root2))).toBe(true);
        });
      }),
    );
  });

  // As with inclusion, sizes are bound through the proof's shape; against the true roots of the changed
  // sizes every change is rejected.
  it('to size1 or size2, checked against the roots of the changed sizes', () => {
    fc.assert(
      fc.property(caseArb, fc.boolean(), ({ size2, s, salt, bit }, first) => {
        const size1 = 1 + (s % (size2 - 1));
        const [c1, c2] = first ? [size1 ^ (1 << bit % 10), size2] : [size1, size2 ^ (1 << bit % 10)];
        fc.pre(c1 > 0 && c2 > 0);
        const leaves = leafHashesOf(Math.max(size2, c1, c2), salt);
        const proof = refConsistencyProof(size1, leaves.slice(0, size2));
        const run = (): void =>
          verifyConsistency(c1, c2, proof, refRoot(leaves.slice(0, c1)), refRoot(leaves.slice(0, c2)));
        expect(rejects(run)).toBe(true);
      }),
    );
  });
});

describe('CompactRange against the reference', () => {
  it('has the reference root after appends in batches, and visits every complete node once', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }), saltArb, (batches, salt) => {
        const total = batches.reduce((a, b) => a + b, 0);
        const leaves = leafHashesOf(total, salt);
        const tree = MerkleTree.fromLeafHashes(leaves);
        let range = CompactRange.empty();
        const visited = new Map<string, string>();
        let at = 0;
        for (const count of batches) {
          range.append(leaves.slice(at, at + count), (id, hash) => {
            const key = `${id.level}/${id.index}`;
            expect(visited.has(key)).toBe(false);
            visited.set(key, toHex(hash));
          });
          at += count;
          expect(range.size).toBe(at);
          expect(toHex(range.root())).toBe(toHex(refRoot(leaves.slice(0, at))));
          range = CompactRange.fromNodes(range.size, range.hashes); // a store reloads it
        }
        // Complete nodes: floor(total / 2^level) at each level, each with the tree's hash.
        let expected = 0;
        for (let level = 0; 2 ** level <= total; level++) expected += Math.floor(total / 2 ** level);
        expect(visited.size).toBe(expected);
        for (const [key, hash] of visited) {
          const [level, index] = key.split('/').map(Number);
          expect(toHex(tree.nodeHash({ level, index }))).toBe(hash);
        }
      }),
    );
  });
});

describe('large indices (beyond 32 bits)', () => {
  it('computes proof node ids with safe-integer arithmetic', () => {
    const size = 2 ** 40 + 5;
    const { ids } = inclusionProofNodes(2 ** 40 + 3, size);
    // Leaf 2^40 + 3 of 2^40 + 5: siblings (0, 2^40 + 2), (1, 2^39), leaf 2^40 + 4, then the left subtree.
    expect(ids).toEqual([
      { level: 0, index: 2 ** 40 + 2 },
      { level: 1, index: 2 ** 39 },
      { level: 0, index: 2 ** 40 + 4 },
      { level: 40, index: 0 },
    ]);
  });

  it('verifies a proof for an index above 2^32 with the leaf hash the proof was made for', () => {
    const leaf = hashLeaf(Buffer.from('x'));
    const proof = Array.from({ length: 4 }, (_, i) => hashLeaf(Buffer.from([i])));
    const root = rootFromInclusionProof(2 ** 40 + 3, 2 ** 40 + 5, leaf, proof);
    expect(() => verifyInclusion(2 ** 40 + 3, 2 ** 40 + 5, leaf, proof, root)).not.toThrow();
    expect(() => verifyInclusion(2 ** 40 + 2, 2 ** 40 + 5, leaf, proof, root)).toThrow(MerkleError);
  });
});
