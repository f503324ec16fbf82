import { CompactRange, HASH_SIZE, hashLeaf, hashLevelInto, rootFromNodes, toHex } from '@lethe/merkle';
import { hexToBytes } from './hash';

/** RFC 9162 Merkle root of the ordered commitments: leaves are hashLeaf(32-byte commitment). */
export function computeBatchRoot(commitments: readonly string[]): string {
  const range = CompactRange.empty();
  range.append(commitments.map(leafOf));
  return toHex(range.root());
}

/**
 * computeBatchRoot of the samples' commitments, in their order, with each sample's leaf hash kept beside it (a
 * commitment is a salted hash, not data): a version derived from another by a removal hashes only the tree's
 * nodes again, not its leaves. Samples are never changed once given to the engine, so the cache cannot go stale.
 *
 * `derivedFrom`: an ordered batch whose root was computed with `keepTree` (a version's samples, of which `samples`
 * is what a removal leaves): the perfect subtrees of the leaves the two share from the start (up to the first
 * removed sample) are taken from its tree, not hashed again; the rest is. The same root as without it, bit for bit
 * (batch-root.spec.ts). `keepTree`: keep this batch's tree (about n hashes) for the batches derived from it.
 */
export function computeSampleBatchRoot(
  samples: readonly { commitment: string }[],
  options: { derivedFrom?: readonly { commitment: string }[]; keepTree?: boolean } = {},
): string {
  const n = samples.length;
  const earlier = options.derivedFrom && sampleTrees.get(options.derivedFrom);
  // The leading samples both batches hold, as the earlier tree was computed from them (the same objects, commitments).
  let shared = 0;
  if (earlier) {
    const limit = Math.min(n, earlier.members.length);
    while (shared < limit && samples[shared] === earlier.members[shared] && samples[shared].commitment === earlier.commitments[shared]) shared++;
  }
  const leaves = new Uint8Array(n * HASH_SIZE);
  if (shared > 0) leaves.set(earlier!.levels[0].subarray(0, shared * HASH_SIZE));
  for (let i = shared; i < n; i++) leaves.set(leafHashOf(samples[i]), i * HASH_SIZE);
  // levels[h]: the hashes of the perfect subtrees of 2^h leaves, left to right, contiguous.
  const levels = [leaves];
  for (let h = 0, width = n, kept = shared; width > 1; h++, width >>= 1, kept >>= 1) {
    const parents = width >> 1;
    const out = new Uint8Array(parents * HASH_SIZE);
    // Parents wholly inside the shared leaves (floor(shared / 2^(h+1)) of them) are the earlier tree's.
    const reused = earlier ? Math.min(kept >> 1, parents) : 0;
    if (reused > 0) out.set(earlier!.levels[h + 1].subarray(0, reused * HASH_SIZE));
    hashLevelInto(levels[h], 2 * HASH_SIZE * reused, parents - reused, out, HASH_SIZE * reused);
    levels.push(out);
  }
  // The root: the perfect subtrees at the set bits of n, left to right, folded right to left (rootNodes(n)).
  const nodes: Uint8Array[] = [];
  for (let h = levels.length - 1, offset = 0; h >= 0; h--) {
    if (Math.floor(n / 2 ** h) % 2 === 0) continue;
    const index = offset / 2 ** h;
    nodes.push(levels[h].subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE));
    offset += 2 ** h;
  }
  if (options.keepTree) sampleTrees.set(samples, { members: samples.slice(), commitments: samples.map((s) => s.commitment), levels });
  return toHex(rootFromNodes(nodes));
}

const sampleLeaves = new WeakMap<object, { commitment: string; hash: Uint8Array }>();
/** Trees kept by computeSampleBatchRoot (keepTree), by the batch they were computed for, with its samples as they were then. */
const sampleTrees = new WeakMap<object, { members: readonly object[]; commitments: readonly string[]; levels: Uint8Array[] }>();

function leafHashOf(sample: { commitment: string }): Uint8Array {
  let leaf = sampleLeaves.get(sample);
  if (!leaf || leaf.commitment !== sample.commitment) sampleLeaves.set(sample, (leaf = { commitment: sample.commitment, hash: leafOf(sample.commitment) }));
  return leaf.hash;
}

function leafOf(commitment: string): Uint8Array {
  return hashLeaf(hexToBytes(commitment));
}
