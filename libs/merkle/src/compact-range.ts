// The right frontier of a tree: the hashes of its perfect subtrees (as rootNodes(size)), enough to append
// leaves and compute the root without rereading the tree.
import { bitIsSet, popCount, shiftRight } from './bits';
import { checkCount } from './checks';
import { MerkleError } from './errors';
import { checkHash, copyBytes, hashChildren } from './hash';
import { NodeId } from './node-id';
import { rootFromNodes } from './proof';

export class CompactRange {
  private constructor(private _size: number, private readonly _hashes: Uint8Array[]) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** A range from the hashes of `rootNodes(size)`, left to right. */
  static fromNodes(size: number, hashes: Uint8Array[]): CompactRange {
    checkCount(size, 'size');
    const want = popCount(size);
    if (!Array.isArray(hashes) || hashes.length !== want) {
      const got = Array.isArray(hashes) ? hashes.length : 0;
      throw new MerkleError('INVALID_ARGUMENT', `hashes has ${got} entries, want ${want} for size ${size}`, {
        field: 'hashes',
        got,
        want,
      });
    }
    hashes.forEach((hash, i) => checkHash(hash, `hashes[${i}]`));
    return new CompactRange(size, hashes.map(copyBytes));
  }

  get size(): number {
    return this._size;
  }

  /** Copies of the perfect subtrees' hashes, left to right (biggest first). */
  get hashes(): Uint8Array[] {
    return this._hashes.map(copyBytes);
  }

  /**
   * Appends leaf hashes. `visit` is called for every perfect node that becomes complete, the leaves
   * themselves (level 0) included, bottom up, so that a store can persist them.
   */
  append(leafHashes: Uint8Array[], visit?: (id: NodeId, hash: Uint8Array) => void): void {
    leafHashes.forEach((hash, i) => checkHash(hash, `leafHashes[${i}]`));
    if (!Number.isSafeInteger(this._size + leafHashes.length)) {
      throw new MerkleError('INVALID_ARGUMENT', `size ${this._size} + ${leafHashes.length} is not a safe integer`, {
        field: 'leafHashes',
      });
    }
    for (const leafHash of leafHashes) {
      let hash = copyBytes(leafHash);
      let level = 0;
      let index = this._size;
      visit?.({ level, index }, hash);
      // Each set low bit of the old size is a left sibling that is now complete on its right.
      while (bitIsSet(this._size, level)) {
        hash = hashChildren(this._hashes.pop()!, hash);
        level++;
        index = shiftRight(index, 1);
        visit?.({ level, index }, hash);
      }
      this._hashes.push(hash);
      this._size++;
    }
  }

  root(): Uint8Array {
    return rootFromNodes(this._hashes);
  }
}
