// Property tests: random trees give the same verdict on-chain (AuditAnchor) and in libs/merkle, for honest
// proofs and for proofs, roots or sizes with one thing changed; and random anchor sequences only extend state.
import fc from 'fast-check';
import { hashLeaf, MerkleError, MerkleTree, toHex, verifyConsistency } from '@lethe/merkle';
import type { AnchoredCheckpoint } from '@lethe/chain';
import { useChainFixture } from './support/chain-fixture';

const RUNS = 60;

function merkleAccepts(size1: number, size2: number, proof: Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  try {
    verifyConsistency(size1, size2, proof, root1, root2);
    return true;
  } catch (err) {
    if (err instanceof MerkleError) return false;
    throw err;
  }
}

function flipBit(hash: Uint8Array, bit: number): Uint8Array {
  const copy = new Uint8Array(hash);
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}

/** A tree of `size` leaves derived from `seed`. */
function buildTree(seed: number, size: number): MerkleTree {
  return MerkleTree.fromLeafHashes(Array.from({ length: size }, (_, i) => hashLeaf(Buffer.from(`${seed}:${i}`))));
}

const sizesArb = fc
  .tuple(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 300 }))
  .map(([size1, extra]) => ({ size1, size2: size1 + extra }));

describe('AuditAnchor consistency check against libs/merkle on random trees', () => {
  const f = useChainFixture();

  it('accepts every honest proof, as libs/merkle does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), sizesArb, async (seed, { size1, size2 }) => {
        const tree = buildTree(seed, size2);
        const proof = tree.consistencyProof(size1, size2);
        const onChain = await f.client.verifyConsistency(size1, size2, tree.root(size1), tree.root(size2), proof);
        expect(onChain).toBe(true);
        expect(merkleAccepts(size1, size2, proof, tree.root(size1), tree.root(size2))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('gives the same verdict on one-bit corruptions of a proof hash or a root, and on a changed size', async () => {
    const corruptionArb = fc.oneof(
      fc.record({ kind: fc.constant('proof' as const), pick: fc.nat(), bit: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constantFrom('root1' as const, 'root2' as const), pick: fc.constant(0), bit: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constantFrom('size1' as const, 'size2' as const), pick: fc.integer({ min: -3, max: 3 }), bit: fc.constant(0) }),
    );
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), sizesArb, corruptionArb, async (seed, sizes, corruption) => {
        const tree = buildTree(seed, sizes.size2 + 3);
        let { size1, size2 } = sizes;
        let root1 = tree.root(size1);
        let root2 = tree.root(size2);
        let proof = tree.consistencyProof(size1, size2);
        if (corruption.kind === 'proof') {
          if (proof.length === 0) return; // nothing to corrupt (size1 = size2)
          const i = corruption.pick % proof.length;
          proof = proof.map((h, j) => (j === i ? flipBit(h, corruption.bit) : h));
        } else if (corruption.kind === 'root1') root1 = flipBit(root1, corruption.bit);
        else if (corruption.kind === 'root2') root2 = flipBit(root2, corruption.bit);
        else if (corruption.kind === 'size1') size1 = Math.max(0, size1 + corruption.pick);
        else size2 = Math.max(0, size2 + corruption.pick);

        const onChain = await f.client.verifyConsistency(size1, size2, root1, root2, proof);
        const inMerkle = merkleAccepts(size1, size2, proof, root1, root2);
        expect({ onChain }).toEqual({ onChain: inMerkle });
        if (corruption.kind === 'proof' || corruption.kind === 'root1' || corruption.kind === 'root2') expect(onChain).toBe(false);
        if (!onChain) rejected++;
      }),
      { numRuns: RUNS * 2 },
    );
    expect(rejected).toBeGreaterThan(RUNS / 2);
  });

  it('random anchor sequences, honest or forged, only ever extend the stored checkpoints', async () => {
    const stepArb = fc.record({ grow: fc.integer({ min: 1, max: 40 }), forge: fc.boolean(), forgedLeaf: fc.nat() });
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(stepArb, { minLength: 2, maxLength: 8 }), async (seed, steps) => {
        await f.reset();
        const tree = buildTree(seed, steps.reduce((s, step) => s + step.grow, 0));
        let stored: AnchoredCheckpoint[] = [];
        let size = 0;
        for (const step of steps) {
          const newSize = size + step.grow;
          if (step.forge && size > 0) {
            // A history that differs from the anchored one in one leaf below `size`: its own proof is valid for it.
            const changed = step.forgedLeaf % size;
            const forged = MerkleTree.fromLeafHashes(
              Array.from({ length: newSize }, (_, i) => (i === changed ? hashLeaf(Buffer.from(`forged ${seed}`)) : tree.leafHash(i))),
            );
            await expect(f.client.anchor(size, newSize, forged.root(newSize), forged.consistencyProof(size, newSize))).rejects.toMatchObject({
              code: 'INCONSISTENT_ROOT',
            });
          } else {
            const proof = size === 0 ? [] : tree.consistencyProof(size, newSize);
            await f.client.waitForAnchor(await f.client.anchor(size, newSize, toHex(tree.root(newSize)), proof));
            size = newSize;
          }
          const count = await f.client.checkpointCount();
          const now = await Promise.all(Array.from({ length: count }, (_, n) => f.client.checkpoint(n)));
          expect(now.slice(0, stored.length)).toEqual(stored);
          expect(now.length - stored.length).toBe(step.forge && stored.length > 0 ? 0 : 1);
          stored = now;
        }
        expect(stored.map((c) => c.rootHash)).toEqual(stored.map((c) => toHex(tree.root(c.treeSize))));
        expect(stored.every((c, n) => n === 0 || c.treeSize > stored[n - 1].treeSize)).toBe(true);
      }),
      { numRuns: 15 },
    );
  });
});
