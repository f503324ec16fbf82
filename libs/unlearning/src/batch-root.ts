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
 * removed sample) are taken from its tree, not hashed again; the rest is, unless one sample was removed and the
 * earlier batch's shifted tree was kept (keepShiftedTree): then the subtrees after it are taken from that tree too
 * and only the one subtree per level that holds the removed position is hashed (about log2 n hashes). The same root
 * as without it, bit for bit (batch-root.spec.ts). `keepTree`: keep this batch's tree (about n hashes) for the
 * batches derived from it.
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
  const levels = (earlier && removedOne(samples, earlier, shared)) ? levelsWithoutOne(earlier, shared, n) : undefined;
  return finishRoot(samples, levels ?? hashLevels(samples, earlier, shared), options.keepTree);
}

/** The tree's levels hashed from the leaves, the perfect subtrees wholly inside the first `shared` leaves taken from `earlier`. */
function hashLevels(samples: readonly { commitment: string }[], earlier: KeptTree | undefined, shared: number): Uint8Array[] {
  const n = samples.length;
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
  return levels;
}

/** Whether `samples` is `earlier`'s batch without its sample at `position` (the first where they differ), and `earlier`'s shifted tree is kept. */
function removedOne(samples: readonly { commitment: string }[], earlier: KeptTree, position: number): boolean {
  const n = samples.length;
  if (!earlier.shifted || n === 0 || n !== earlier.members.length - 1) return false;
  for (let i = position; i < n; i++) if (samples[i] !== earlier.members[i + 1] || samples[i].commitment !== earlier.commitments[i + 1]) return false;
  return true;
}

/**
 * The levels of `earlier`'s tree without its leaf at `position` (n leaves left): at each level the subtrees before
 * the position are `earlier`'s, those after it the shifted tree's (the same leaves, one place to the left), and the
 * one that holds the position, if any, is hashed from its two children below.
 */
function levelsWithoutOne(earlier: KeptTree, position: number, n: number): Uint8Array[] {
  const shifted = earlier.shifted!;
  const leaves = new Uint8Array(n * HASH_SIZE);
  leaves.set(earlier.levels[0].subarray(0, position * HASH_SIZE));
  leaves.set(shifted[0].subarray(position * HASH_SIZE, n * HASH_SIZE), position * HASH_SIZE);
  const levels = [leaves];
  for (let h = 1; n >> h > 0; h++) {
    const width = n >> h;
    const out = new Uint8Array(width * HASH_SIZE);
    const before = Math.min(position >> h, width); // subtrees wholly before the position
    out.set(earlier.levels[h].subarray(0, before * HASH_SIZE));
    let after = before; // the first subtree wholly after it
    if (before < width && before << h < position) {
      hashLevelInto(levels[h - 1], 2 * HASH_SIZE * before, 1, out, HASH_SIZE * before);
      after = before + 1;
    }
    out.set(shifted[h].subarray(after * HASH_SIZE, width * HASH_SIZE), after * HASH_SIZE);
    levels.push(out);
  }
  return levels;
}

/** The root from the tree's levels, the tree kept when asked (keepTree). */
function finishRoot(samples: readonly { commitment: string }[], levels: Uint8Array[], keepTree: boolean | undefined): string {
  const n = samples.length;
  // The root: the perfect subtrees at the set bits of n, left to right, folded right to left (rootNodes(n)).
  const nodes: Uint8Array[] = [];
  for (let h = levels.length - 1, offset = 0; h >= 0; h--) {
    if (Math.floor(n / 2 ** h) % 2 === 0) continue;
    const index = offset / 2 ** h;
    nodes.push(levels[h].subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE));
    offset += 2 ** h;
  }
  if (keepTree) sampleTrees.set(samples, { members: samples.slice(), commitments: samples.map((s) => s.commitment), levels });
  return toHex(rootFromNodes(nodes));
}

/**
 * Keeps, beside the tree kept for `samples` (computeSampleBatchRoot with keepTree), the tree of the same leaves
 * without the first one (about n hashes), so that the root of the batch without any one of its samples costs about
 * log2 n hashes (computeSampleBatchRoot with derivedFrom). For work done ahead of a removal (a certified version's
 * preparation); does nothing when no tree is kept for `samples` or its shifted tree already is.
 */
export function keepShiftedTree(samples: readonly { commitment: string }[]): void {
  const tree = sampleTrees.get(samples);
  if (!tree || tree.shifted) return;
  const n = tree.members.length - 1;
  if (n < 1) return;
  const levels = [tree.levels[0].subarray(HASH_SIZE)];
  for (let h = 0, width = n; width > 1; h++, width >>= 1) {
    const out = new Uint8Array((width >> 1) * HASH_SIZE);
    hashLevelInto(levels[h], 0, width >> 1, out, 0);
    levels.push(out);
  }
  tree.shifted = levels;
}

const sampleLeaves = new WeakMap<object, { commitment: string; hash: Uint8Array }>();
/** Trees kept by computeSampleBatchRoot (keepTree), by the batch they were computed for, with its samples as they were then. */
const sampleTrees = new WeakMap<object, KeptTree>();

interface KeptTree {
  members: readonly object[];
  commitments: readonly string[];
  /** levels[h]: the hashes of the perfect subtrees of 2^h leaves, left to right. */
  levels: Uint8Array[];
  /** The same for the leaves without the first (keepShiftedTree): shifted[h][i] covers leaves i 2^h + 1 .. (i + 1) 2^h. */
  shifted?: Uint8Array[];
}

function leafHashOf(sample: { commitment: string }): Uint8Array {
  let leaf = sampleLeaves.get(sample);
  if (!leaf || leaf.commitment !== sample.commitment) sampleLeaves.set(sample, (leaf = { commitment: sample.commitment, hash: leafOf(sample.commitment) }));
  return leaf.hash;
}

function leafOf(commitment: string): Uint8Array {
  return hashLeaf(hexToBytes(commitment));
}
