import { CompactRange, hashLeaf, toHex } from '@lethe/merkle';
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
 */
export function computeSampleBatchRoot(samples: readonly { commitment: string }[]): string {
  const range = CompactRange.empty();
  range.append(
    samples.map((sample) => {
      let leaf = sampleLeaves.get(sample);
      if (!leaf || leaf.commitment !== sample.commitment) sampleLeaves.set(sample, (leaf = { commitment: sample.commitment, hash: leafOf(sample.commitment) }));
      return leaf.hash;
    }),
  );
  return toHex(range.root());
}

const sampleLeaves = new WeakMap<object, { commitment: string; hash: Uint8Array }>();

function leafOf(commitment: string): Uint8Array {
  return hashLeaf(hexToBytes(commitment));
}
