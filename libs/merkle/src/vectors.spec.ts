// The shared RFC 9162 vectors: every happy path verifies (and, for trees of the eight known leaves, the
// proofs we build are the same bytes); every wantErr case is rejected with a MerkleError.
import {
  MerkleError,
  MerkleTree,
  hashLeaf,
  rootFromInclusionProof,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './index';
import {
  ConsistencyVector,
  InclusionVector,
  VECTORS_DIR,
  fromBase64,
  loadVectors,
  vectorsPresent,
} from './testing/vectors';

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const tree = MerkleTree.fromLeafHashes(LEAVES.map((hex) => hashLeaf(Buffer.from(hex, 'hex'))));

const present = vectorsPresent();
if (!present) {
  // Straight to stderr: jest drops the console output of a file whose tests are all skipped.
  process.stderr.write(`RFC 9162 vectors skipped: ${VECTORS_DIR} is absent (../shared is not beside the repository)\n`);
}
const suite = present ? describe : describe.skip;
const absent = present ? '' : ` (skipped: ${VECTORS_DIR} is absent)`;

suite(`RFC 9162 inclusion vectors${absent}`, () => {
  const files = present ? loadVectors<InclusionVector>('inclusion') : [];
  it('finds the vectors', () => expect(files.length).toBeGreaterThan(50));
  for (const { name, vector: v } of files) {
    it(name, () => {
      const proof = (v.proof ?? []).map(fromBase64);
      const leafHash = fromBase64(v.leafHash);
      const root = fromBase64(v.root);
      const run = (): void => verifyInclusion(v.leafIdx, v.treeSize, leafHash, proof, root);
      if (v.wantErr) {
        expect(run).toThrow(MerkleError);
        return;
      }
      expect(run).not.toThrow();
      expect(toHex(rootFromInclusionProof(v.leafIdx, v.treeSize, leafHash, proof))).toBe(toHex(root));
      if (v.treeSize <= tree.size && toHex(tree.root(v.treeSize)) === toHex(root)) {
        expect(tree.inclusionProof(v.leafIdx, v.treeSize).map(toHex)).toEqual(proof.map(toHex));
      }
    });
  }
});

suite(`RFC 9162 consistency vectors${absent}`, () => {
  const files = present ? loadVectors<ConsistencyVector>('consistency') : [];
  it('finds the vectors', () => expect(files.length).toBeGreaterThan(50));
  for (const { name, vector: v } of files) {
    it(name, () => {
      const proof = (v.proof ?? []).map(fromBase64);
      const root1 = fromBase64(v.root1);
      const root2 = fromBase64(v.root2);
      const run = (): void => verifyConsistency(v.size1, v.size2, proof, root1, root2);
      if (v.wantErr) {
        expect(run).toThrow(MerkleError);
        return;
      }
      expect(run).not.toThrow();
      if (v.size2 <= tree.size && toHex(tree.root(v.size2)) === toHex(root2)) {
        expect(tree.consistencyProof(v.size1, v.size2).map(toHex)).toEqual(proof.map(toHex));
      }
    });
  }
});
