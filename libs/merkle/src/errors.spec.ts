// Inputs are checked first, with precise messages and codes that callers can branch on.
import {
  CompactRange,
  EMPTY_ROOT,
  MerkleError,
  MerkleTree,
  fromHex,
  hashChildren,
  hashLeaf,
  inclusionProofNodes,
  rehashProof,
  rootFromInclusionProof,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './index';

function thrown(run: () => unknown): MerkleError {
  try {
    run();
  } catch (error) {
    if (error instanceof MerkleError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

const leaves = Array.from({ length: 8 }, (_, i) => hashLeaf(Uint8Array.of(i)));
const tree = MerkleTree.fromLeafHashes(leaves);

describe('MerkleError', () => {
  it('names an index beyond the size', () => {
    const error = thrown(() => verifyInclusion(9, 8, leaves[0], tree.inclusionProof(0), tree.root()));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'index 9 is beyond size 8', field: 'index' });
    expect(thrown(() => tree.inclusionProof(8)).message).toBe('index 8 is beyond size 8');
  });

  it('counts the hashes of a proof of the wrong length', () => {
    const proof = [...tree.inclusionProof(0), leaves[1]];
    const error = thrown(() => verifyInclusion(0, 8, leaves[0], proof, tree.root()));
    expect(error).toMatchObject({ code: 'BAD_PROOF', message: 'proof has 4 hashes, want 3', got: 4, want: 3 });
  });

  it('carries both roots as hex on a mismatch', () => {
    const error = thrown(() => verifyInclusion(1, 8, leaves[0], tree.inclusionProof(0), tree.root()));
    expect(error.code).toBe('ROOT_MISMATCH');
    expect(error.expectedRoot).toBe(toHex(tree.root()));
    expect(error.calculatedRoot).toBe(toHex(rootFromInclusionProof(1, 8, leaves[0], tree.inclusionProof(0))));
    expect(error.calculatedRoot).not.toBe(error.expectedRoot);
  });

  it('names which root of a consistency proof does not match', () => {
    const proof = tree.consistencyProof(3, 8);
    expect(thrown(() => verifyConsistency(3, 8, proof, tree.root(4), tree.root(8))).field).toBe('root1');
    expect(thrown(() => verifyConsistency(3, 8, proof, tree.root(3), tree.root(7))).field).toBe('root2');
  });

  it.each([
    [-1, 'size must be a safe integer >= 0, got -1'],
    [1.5, 'size must be a safe integer >= 0, got 1.5'],
    [2 ** 53, 'size must be a safe integer >= 0, got 9007199254740992'],
    [NaN, 'size must be a safe integer >= 0, got NaN'],
    ['8', 'size must be a safe integer >= 0, got "8"'],
  ])('rejects size %p', (size, message) => {
    const error = thrown(() => rootFromInclusionProof(0, size as number, leaves[0], []));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message, field: 'size' });
  });

  it('rejects hashes that are not 32 bytes', () => {
    const short = leaves[0].subarray(0, 31);
    expect(thrown(() => verifyInclusion(0, 8, short, tree.inclusionProof(0), tree.root()))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'leafHash has 31 bytes, want 32',
    });
    expect(thrown(() => verifyInclusion(0, 8, leaves[0], tree.inclusionProof(0), short))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'root',
    });
    const proof = tree.inclusionProof(0);
    proof[1] = new Uint8Array(33);
    expect(thrown(() => verifyInclusion(0, 8, leaves[0], proof, tree.root()))).toMatchObject({
      code: 'BAD_PROOF',
      message: 'proof[1] has 33 bytes, want 32',
    });
    expect(thrown(() => verifyConsistency(3, 8, tree.consistencyProof(3, 8), short, tree.root()))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'root1',
    });
    expect(thrown(() => hashChildren(short, leaves[0])).code).toBe('INVALID_ARGUMENT');
    expect(thrown(() => tree.append(short)).code).toBe('INVALID_ARGUMENT');
    expect(thrown(() => CompactRange.empty().append([short])).message).toBe('leafHashes[0] has 31 bytes, want 32');
    expect(thrown(() => hashLeaf('text' as unknown as Uint8Array)).code).toBe('INVALID_ARGUMENT');
  });

  it('has no consistency proof from size 0 or backwards', () => {
    expect(thrown(() => tree.consistencyProof(0, 8))).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'size1' });
    expect(thrown(() => verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).code).toBe('INVALID_ARGUMENT');
    expect(thrown(() => verifyConsistency(5, 4, [], tree.root(5), tree.root(4))).message).toBe(
      'size1 5 is beyond size2 4',
    );
    expect(thrown(() => tree.consistencyProof(4, 9)).message).toBe('size2 9 is beyond tree size 8');
  });

  it('wants an empty proof and equal roots for equal sizes', () => {
    expect(() => verifyConsistency(8, 8, [], tree.root(), tree.root())).not.toThrow();
    expect(thrown(() => verifyConsistency(8, 8, [leaves[0]], tree.root(), tree.root())).message).toBe(
      'proof has 1 hashes, want 0',
    );
    expect(thrown(() => verifyConsistency(8, 8, [], tree.root(), tree.root(7))).code).toBe('ROOT_MISMATCH');
  });

  it('checks the hashes given to rehashProof and CompactRange.fromNodes', () => {
    const nodes = inclusionProofNodes(0, 7);
    expect(thrown(() => rehashProof(nodes, [leaves[0]])).message).toBe(
      `hashes has 1 entries, want ${nodes.ids.length}`,
    );
    expect(thrown(() => CompactRange.fromNodes(7, [leaves[0]])).message).toBe(
      'hashes has 1 entries, want 3 for size 7',
    );
  });
});

describe('hex', () => {
  it('round-trips lowercase hex and names the field it rejects', () => {
    expect(toHex(fromHex(toHex(leaves[3]).toUpperCase()))).toBe(toHex(leaves[3]));
    expect(thrown(() => fromHex('abc', 'root1'))).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'root1' });
    expect(thrown(() => fromHex('zz'.repeat(32), 'root2')).message).toMatch(/^root2 is not hex/);
    expect(thrown(() => fromHex('00'.repeat(31))).message).toBe('hash has 31 bytes, want 32');
  });

  it('has the SHA-256 of nothing as the empty root', () => {
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(MerkleTree.empty().root())).toBe(toHex(EMPTY_ROOT));
    expect(toHex(CompactRange.empty().root())).toBe(toHex(EMPTY_ROOT));
  });
});
