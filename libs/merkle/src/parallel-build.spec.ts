import { MerkleTree, buildTree, buildTreeParallel, hashLeaf, toHex } from './index';

function leafData(size: number): Uint8Array[] {
  // Leaves of varying lengths, some empty and some longer than the worker's first input buffer.
  return Array.from({ length: size }, (_, i) => new Uint8Array((i * 37) % 1500).fill(i & 0xff));
}

describe('buildTreeParallel', () => {
  it.each([0, 1, 2, 3, 1023, 1024, 1025, 5000])(
    'builds the same tree as hashing on one thread (%i leaves)',
    async (size) => {
      const leaves = leafData(size);
      const reference = MerkleTree.fromLeafHashes(leaves.map(hashLeaf));
      const parallel = await buildTreeParallel(leaves, { threads: 2, chunkLevel: 3 });
      expect(parallel.size).toBe(size);
      expect(toHex(parallel.root())).toBe(toHex(reference.root()));
      expect(toHex(buildTree(leaves).root())).toBe(toHex(reference.root()));
      if (size > 2) {
        expect(parallel.inclusionProof(size - 2).map(toHex)).toEqual(reference.inclusionProof(size - 2).map(toHex));
        expect(parallel.consistencyProof(size - 1).map(toHex)).toEqual(reference.consistencyProof(size - 1).map(toHex));
      }
      // A built tree can still grow.
      parallel.append(hashLeaf(Uint8Array.of(1)));
      reference.append(hashLeaf(Uint8Array.of(1)));
      expect(toHex(parallel.root())).toBe(toHex(reference.root()));
    },
  );

  it('rejects a leaf that is not bytes, and stops its workers', async () => {
    const leaves: unknown[] = leafData(5000);
    leaves[4000] = 'not bytes';
    await expect(buildTreeParallel(leaves as Uint8Array[], { threads: 2 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'leaves[4000] is not a Uint8Array',
    });
  });
});
