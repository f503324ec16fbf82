import { CompactRange, hashLeaf, toHex } from '@lethe/merkle';
import { hexToBytes } from './hash';

/** RFC 9162 Merkle root of the ordered commitments: leaves are hashLeaf(32-byte commitment). */
export function computeBatchRoot(commitments: readonly string[]): string {
  const range = CompactRange.empty();
  range.append(commitments.map((c) => hashLeaf(hexToBytes(c))));
  return toHex(range.root());
}
