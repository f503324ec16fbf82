// RFC 9162 Merkle trees over SHA-256: hashing, proofs (which nodes, building, verifying), compact ranges.
export { MerkleError } from './errors';
export type { MerkleErrorCode, MerkleErrorDetails } from './errors';
export { EMPTY_ROOT, HASH_SIZE, LEAF_HASH_PREFIX, NODE_HASH_PREFIX, hashChildren, hashLeaf, hashLevelInto } from './hash';
export { fromHex, toHex } from './hex';
export { nodeCoverage, rangeNodes } from './node-id';
export type { NodeId } from './node-id';
export { consistencyProofNodes, inclusionProofNodes, rehashProof, rootFromNodes, rootNodes } from './proof';
export type { ProofNodes } from './proof';
export { decomposeInclusionProof, rootFromInclusionProof, verifyConsistency, verifyInclusion } from './verify';
export { CompactRange } from './compact-range';
export { MerkleTree } from './tree';
export { buildTree, buildTreeParallel } from './parallel-build';
export type { ParallelBuildOptions } from './parallel-build';
