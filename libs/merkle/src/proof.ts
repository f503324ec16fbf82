// Which stored perfect-subtree nodes a proof needs, after transparency-dev/merkle's proof package.
// A proof hash is either a perfect node the store holds, or the one "ephemeral" node: the root of the
// incomplete subtree at the right edge, which is folded from the perfect nodes that cover it.
import { bitLength, shiftRight, trailingZeros, xor } from './bits';
import { checkCount, checkIndex, checkSizes } from './checks';
import { MerkleError } from './errors';
import { EMPTY_ROOT, checkHash, copyBytes, hashChildrenUnchecked as hashChildren } from './hash';
import { NodeId, nodeCoverage, parentOf, rangeNodes, siblingOf } from './node-id';

/**
 * The nodes behind a proof. `ids[begin..end)` cover the ephemeral node `ephem` and are listed right to left
 * (smallest subtree first); `rehashProof` folds them into that one hash. `ephem` means something only when
 * end - begin > 1; otherwise the proof hashes are exactly the hashes of `ids`.
 */
export interface ProofNodes {
  ids: NodeId[];
  begin: number;
  end: number;
  ephem: NodeId;
}

/** The nodes of the inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 PATH). */
export function inclusionProofNodes(index: number, size: number): ProofNodes {
  checkIndex(index, size);
  return skipFirst(proofNodes(index, 0, size));
}

/**
 * The nodes of the consistency proof from `size1` to `size2` (RFC 9162 PROOF). Empty when the sizes are
 * equal. There is no consistency proof from the empty tree: size1 = 0 is INVALID_ARGUMENT.
 */
export function consistencyProofNodes(size1: number, size2: number): ProofNodes {
  checkSizes(size1, size2);
  checkNotEmpty(size1);
  if (size1 === size2) return { ids: [], begin: 0, end: 0, ephem: { level: 0, index: 0 } };
  // The biggest perfect subtree that ends at size1 ...
  const level = trailingZeros(size1);
  const index = shiftRight(size1 - 1, level);
  // ... and the inclusion proof of that node in the tree of size2. When size1 is a power of two that node is
  // the whole tree of size1, whose root the verifier already has, so it is left out.
  const nodes = proofNodes(index, level, size2);
  return index === 0 ? skipFirst(nodes) : nodes;
}

export function checkNotEmpty(size1: number): void {
  if (size1 === 0) {
    throw new MerkleError('INVALID_ARGUMENT', 'size1 is 0: there is no consistency proof from the empty tree', {
      field: 'size1',
      got: 0,
    });
  }
}

/** The node (level, index) itself, then the nodes of its inclusion proof in the tree of `size`. */
function proofNodes(index: number, level: number, size: number): ProofNodes {
  // The fork is where the path from the root to (level, index) leaves the path to the right edge of the
  // tree; its sibling is the ephemeral node. `inner` is how many levels above (level, index) the fork is.
  const inner = bitLength(xor(index, shiftRight(size, level))) - 1;
  const fork: NodeId = { level: level + inner, index: shiftRight(index, inner) };
  const [begin, end] = nodeCoverage(fork);

  let node: NodeId = { level, index };
  const ids: NodeId[] = [node];
  // Siblings of the path from the node up to the fork.
  for (; node.level < fork.level; node = parentOf(node)) ids.push(siblingOf(node));
  const ephemBegin = ids.length;
  // The perfect nodes that cover the ephemeral node, right to left.
  if (end < size) ids.push(...rangeNodes(end, size).reverse());
  const ephemEnd = ids.length;
  // Left siblings of the path from the fork to the root, bottom up.
  ids.push(...rangeNodes(0, begin).reverse());
  return { ids, begin: ephemBegin, end: ephemEnd, ephem: siblingOf(fork) };
}

function skipFirst(nodes: ProofNodes): ProofNodes {
  return {
    ids: nodes.ids.slice(1),
    begin: nodes.begin - 1,
    end: nodes.end - 1,
    ephem: nodes.ephem,
  };
}

/**
 * Given the hashes of `nodes.ids` (same order), folds ids[begin..end) into the ephemeral node's hash and
 * returns the proof hashes.
 */
export function rehashProof(nodes: ProofNodes, hashes: Uint8Array[]): Uint8Array[] {
  if (!Array.isArray(hashes) || hashes.length !== nodes.ids.length) {
    const got = Array.isArray(hashes) ? hashes.length : 0;
    throw new MerkleError('INVALID_ARGUMENT', `hashes has ${got} entries, want ${nodes.ids.length}`, {
      field: 'hashes',
      got,
      want: nodes.ids.length,
    });
  }
  hashes.forEach((hash, i) => checkHash(hash, `hashes[${i}]`));
  if (nodes.end - nodes.begin <= 1) return hashes.slice();
  let ephem = hashes[nodes.begin];
  for (let i = nodes.begin + 1; i < nodes.end; i++) ephem = hashChildren(hashes[i], ephem);
  return [...hashes.slice(0, nodes.begin), ephem, ...hashes.slice(nodes.end)];
}

/** The perfect subtrees whose roots make the root of a tree of `size` leaves, left to right. */
export function rootNodes(size: number): NodeId[] {
  checkCount(size, 'size');
  return rangeNodes(0, size);
}

/** Folds the hashes of `rootNodes(size)` right to left into the tree's root; [] gives EMPTY_ROOT. */
export function rootFromNodes(hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return copyBytes(EMPTY_ROOT);
  hashes.forEach((hash, i) => checkHash(hash, `hashes[${i}]`));
  let root = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i], root);
  return root === hashes[hashes.length - 1] ? copyBytes(root) : root;
}
