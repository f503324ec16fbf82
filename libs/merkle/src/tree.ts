// An in-memory tree that keeps every level, for benchmarks, tests and auditors. Level k holds the hashes of
// the complete perfect nodes at that level, contiguously (32 bytes each).
import { shiftRight } from './bits';
import { checkCount, checkIndex, checkSizes } from './checks';
import { MerkleError } from './errors';
import { HASH_SIZE, checkHash, copyBytes, hashLevelInto } from './hash';
import { NodeId } from './node-id';
import { ProofNodes, consistencyProofNodes, inclusionProofNodes, rehashProof, rootFromNodes, rootNodes } from './proof';

class Level {
  constructor(public bytes: Uint8Array, public count: number) {}

  get(index: number): Uint8Array {
    return this.bytes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** Makes room for `more` hashes at the end (doubling), returning the byte offset of the first. */
  reserve(more: number): number {
    const need = (this.count + more) * HASH_SIZE;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.bytes.length, 64 * HASH_SIZE));
      grown.set(this.bytes.subarray(0, this.count * HASH_SIZE));
      this.bytes = grown;
    }
    return this.count * HASH_SIZE;
  }
}

export class MerkleTree {
  /** Hashes of ephemeral nodes by `size/level/index`: complete nodes never change, so neither do these. */
  private readonly ephemeral = new Map<string, Uint8Array>();

  private constructor(private readonly levels: Level[]) {}

  static empty(): MerkleTree {
    return new MerkleTree([new Level(new Uint8Array(0), 0)]);
  }

  static fromLeafHashes(leafHashes: Uint8Array[]): MerkleTree {
    const bytes = new Uint8Array(leafHashes.length * HASH_SIZE);
    leafHashes.forEach((hash, i) => {
      checkHash(hash, `leafHashes[${i}]`);
      bytes.set(hash, i * HASH_SIZE);
    });
    return MerkleTree.fromLevel0(bytes, leafHashes.length);
  }

  /**
   * A tree over `size` leaf hashes stored contiguously in `leafHashes` (size * 32 bytes), which the tree
   * takes over (no copy).
   */
  static fromLevel0(leafHashes: Uint8Array, size: number): MerkleTree {
    checkCount(size, 'size');
    if (leafHashes.length < size * HASH_SIZE) {
      throw new MerkleError('INVALID_ARGUMENT', `leafHashes has ${leafHashes.length} bytes, want ${size * HASH_SIZE}`, {
        field: 'leafHashes',
      });
    }
    const levels = [new Level(leafHashes, size)];
    for (let count = size; count > 1; ) {
      const below = levels[levels.length - 1];
      count = Math.floor(count / 2);
      const level = new Level(new Uint8Array(count * HASH_SIZE), count);
      hashLevelInto(below.bytes, 0, count, level.bytes, 0);
      levels.push(level);
    }
    return new MerkleTree(levels);
  }

  /**
   * A tree from levels computed elsewhere (the parallel builder): levels[k] holds floor(size / 2^k) hashes.
   * The arrays are taken over, not copied or checked.
   */
  static fromLevels(levels: Uint8Array[], size: number): MerkleTree {
    checkCount(size, 'size');
    return new MerkleTree(levels.map((bytes, k) => new Level(bytes, Math.floor(size / 2 ** k))));
  }

  get size(): number {
    return this.levels[0].count;
  }

  append(leafHash: Uint8Array): void {
    checkHash(leafHash, 'leafHash');
    let index = this.size;
    let level = 0;
    let offset = this.levels[0].reserve(1);
    this.levels[0].bytes.set(leafHash, offset);
    this.levels[0].count++;
    // While the new node is a right child, its parent is complete.
    while (index % 2 === 1) {
      const below = this.levels[level];
      level++;
      index = shiftRight(index, 1);
      if (this.levels.length === level) this.levels.push(new Level(new Uint8Array(0), 0));
      const above = this.levels[level];
      offset = above.reserve(1);
      hashLevelInto(below.bytes, 2 * index * HASH_SIZE, 1, above.bytes, offset);
      above.count++;
    }
  }

  /** The root of the tree's first `size` leaves (default: all). */
  root(size = this.size): Uint8Array {
    this.checkSize(size, 'size');
    return rootFromNodes(rootNodes(size).map((id) => this.hashOf(id)));
  }

  inclusionProof(index: number, size = this.size): Uint8Array[] {
    this.checkSize(size, 'size');
    checkIndex(index, size);
    return this.proof(inclusionProofNodes(index, size), size);
  }

  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    checkSizes(size1, size2);
    this.checkSize(size2, 'size2');
    return this.proof(consistencyProofNodes(size1, size2), size2);
  }

  /** Hash of leaf `index`. */
  leafHash(index: number): Uint8Array {
    checkIndex(index, this.size, 'index', 'size');
    return copyBytes(this.levels[0].get(index));
  }

  /** A copy of the stored hash of a complete perfect node. */
  nodeHash(id: NodeId): Uint8Array {
    const level = this.levels[id.level];
    if (!level || !Number.isSafeInteger(id.index) || id.index < 0 || id.index >= level.count) {
      throw new MerkleError('INVALID_ARGUMENT', `node (${id.level}, ${id.index}) is not a complete node of this tree`, {
        field: 'id',
      });
    }
    return copyBytes(level.get(id.index));
  }

  private hashOf(id: NodeId): Uint8Array {
    return this.levels[id.level].get(id.index);
  }

  private proof(nodes: ProofNodes, size: number): Uint8Array[] {
    if (nodes.end - nodes.begin <= 1) return nodes.ids.map((id) => copyBytes(this.hashOf(id)));
    // The ephemeral node (the incomplete subtree at the right edge) is the same for many proofs of one size.
    const key = `${size}/${nodes.ephem.level}/${nodes.ephem.index}`;
    let ephem = this.ephemeral.get(key);
    if (!ephem) {
      ephem = rehashProof(
        { ids: nodes.ids.slice(nodes.begin, nodes.end), begin: 0, end: nodes.end - nodes.begin, ephem: nodes.ephem },
        nodes.ids.slice(nodes.begin, nodes.end).map((id) => this.hashOf(id)),
      )[0];
      if (this.ephemeral.size >= 4096) this.ephemeral.clear();
      this.ephemeral.set(key, ephem);
    }
    return [
      ...nodes.ids.slice(0, nodes.begin).map((id) => copyBytes(this.hashOf(id))),
      copyBytes(ephem),
      ...nodes.ids.slice(nodes.end).map((id) => copyBytes(this.hashOf(id))),
    ];
  }

  private checkSize(size: number, field: string): void {
    checkCount(size, field);
    if (size > this.size) {
      throw new MerkleError('INVALID_ARGUMENT', `${field} ${size} is beyond tree size ${this.size}`, {
        field,
        got: size,
        want: this.size,
      });
    }
  }
}
