import { CompactRange, hashLeaf, toHex } from '@lethe/merkle';
import { LedgerError, decodeEvent } from '@lethe/events';
import { DataSource } from 'typeorm';
import { toSafeInteger } from './bigint.transformer';

export type FsckProblemKind =
  | 'GAP' // an index is missing
  | 'BAD_EVENT' // an entry's JSON is not a valid canonical event
  | 'LEAF_MISMATCH' // an entry's stored leaf hash is not the hash of its JSON
  | 'NODE_MISMATCH' // a stored interior node differs from the one recomputed from the leaves
  | 'NODE_MISSING'
  | 'NODE_EXTRA' // a stored node covers leaves the log does not have
  | 'CHECKPOINT_MISMATCH' // a stored checkpoint's root differs from the recomputed root
  | 'CHECKPOINT_BEYOND' // a stored checkpoint is larger than the log
  | 'HEAD_MISMATCH'; // the head (size, root) differs from what the entries give

export interface FsckProblem {
  kind: FsckProblemKind;
  /** Entry index, or the tree size for checkpoints and the head. */
  index: number;
  message: string;
}

export interface FsckReport {
  ok: boolean;
  entries: number;
  nodes: number;
  checkpoints: number;
  rootHash: string;
  /** The first mismatch found, in index order; fsck stops there. */
  firstProblem?: FsckProblem;
}

export interface FsckOptions {
  /** Entries read per query. */
  batchSize?: number;
  onProgress?: (checked: number, total: number) => void;
}

/**
 * Recomputes every leaf hash, every stored interior node and every checkpoint root from the stored
 * entries, and reports the first mismatch with its index. Reads in batches, in bounded memory.
 */
export async function fsckLedger(dataSource: DataSource, options: FsckOptions = {}): Promise<FsckReport> {
  const batchSize = options.batchSize ?? 20000;
  const head = await readHead(dataSource);
  const rebuild = new TreeRebuild(await readCheckpoints(dataSource));
  const [{ max }] = await dataSource.query(`SELECT max(idx) AS max FROM ledger_entries`);
  const entryCount = max === null ? 0 : toSafeInteger(max, 'index') + 1;
  const total = Math.max(entryCount, head.size);
  for (let start = 0; start < entryCount; start += batchSize) {
    const end = Math.min(start + batchSize, entryCount);
    const problem = await rebuild.checkBatch(dataSource, start, end);
    if (problem) return rebuild.report(problem);
    options.onProgress?.(end, total);
  }
  const problem = await rebuild.checkEnd(dataSource, entryCount, head);
  return problem ? rebuild.report(problem) : rebuild.report();
}

interface StoredHead {
  size: number;
  root: string;
  /** The right frontier's hashes, comma-separated. */
  frontier: string;
}

interface StoredCheckpoint {
  size: number;
  root: string;
}

async function readHead(dataSource: DataSource): Promise<StoredHead> {
  const [head] = await dataSource.query(`SELECT tree_size, root_hash, frontier FROM ledger_head WHERE id = 1`);
  return {
    size: toSafeInteger(head.tree_size, 'tree size'),
    root: (head.root_hash as Buffer).toString('hex'),
    frontier: (head.frontier as Buffer[]).map((h) => h.toString('hex')).join(','),
  };
}

async function readCheckpoints(dataSource: DataSource): Promise<StoredCheckpoint[]> {
  const rows: { tree_size: string; root_hash: Buffer }[] = await dataSource.query(
    `SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY tree_size`,
  );
  return rows.map((r) => ({ size: toSafeInteger(r.tree_size, 'checkpoint size'), root: r.root_hash.toString('hex') }));
}

const gap = (index: number): FsckProblem => ({ kind: 'GAP', index, message: `entry ${index} is missing` });

/** The tree rebuilt from the entries, batch by batch, compared with what is stored as it grows. */
class TreeRebuild {
  private readonly range = CompactRange.empty();
  private nodesChecked = 0;
  private nextCheckpoint = 0;
  private readonly encoder = new TextEncoder();

  constructor(private readonly checkpoints: StoredCheckpoint[]) {}

  /** What was checked so far; failed at `problem` when given. */
  report(problem?: FsckProblem): FsckReport {
    const counts = { entries: this.range.size, nodes: this.nodesChecked };
    const rootHash = toHex(this.range.root());
    if (!problem) return { ok: true, ...counts, checkpoints: this.checkpoints.length, rootHash };
    return { ok: false, ...counts, checkpoints: this.nextCheckpoint, rootHash, firstProblem: problem };
  }

  /** Entries [start, end): no gap, each a valid event under its leaf hash; the checkpoints and interior nodes they complete. */
  async checkBatch(dataSource: DataSource, start: number, end: number): Promise<FsckProblem | undefined> {
    const rows: { idx: string; leaf_hash: Buffer; event: string }[] = await dataSource.query(
      `SELECT idx, leaf_hash, event FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [String(start), String(end)],
    );
    // Stored interior nodes completed by this batch, by level.
    const stored = await readNodesCompletedIn(dataSource, start, end);
    const computed: ComputedNode[] = [];
    let expected = start;
    for (const row of rows) {
      const index = toSafeInteger(row.idx, 'index');
      if (index !== expected) return gap(expected);
      const problem = this.appendEntry(index, row, computed);
      if (problem) return problem;
      expected++;
    }
    if (expected !== end) return gap(expected);
    return this.compareNodes(computed, stored);
  }

  /** One entry checked and appended: its interior nodes go to `computed`; the checkpoints at the new size are compared. */
  private appendEntry(index: number, row: { leaf_hash: Buffer; event: string }, computed: ComputedNode[]): FsckProblem | undefined {
    try {
      decodeEvent(row.event);
    } catch (error) {
      return { kind: 'BAD_EVENT', index, message: `entry ${index}: ${(error as Error).message}` };
    }
    const leafHash = hashLeaf(this.encoder.encode(row.event));
    if (!row.leaf_hash.equals(Buffer.from(leafHash)))
      return {
        kind: 'LEAF_MISMATCH',
        index,
        message: `entry ${index}: stored leaf hash ${row.leaf_hash.toString('hex')}, its JSON hashes to ${toHex(leafHash)}`,
      };
    this.range.append([leafHash], (id, hash) => {
      if (id.level > 0) computed.push({ level: id.level, index: id.index, hash });
    });
    while (this.nextCheckpoint < this.checkpoints.length && this.checkpoints[this.nextCheckpoint].size === this.range.size) {
      const stored = this.checkpoints[this.nextCheckpoint];
      const root = toHex(this.range.root());
      if (root !== stored.root)
        return {
          kind: 'CHECKPOINT_MISMATCH',
          index: this.range.size,
          message: `checkpoint at size ${this.range.size}: stored root ${stored.root}, recomputed ${root}`,
        };
      this.nextCheckpoint++;
    }
    return undefined;
  }

  /** The interior nodes a batch completed against those stored for it: none missing, none different, none extra. */
  private compareNodes(computed: ComputedNode[], stored: Map<string, Buffer>): FsckProblem | undefined {
    for (const node of computed) {
      const key = `${node.level}/${node.index}`;
      const hash = stored.get(key);
      const firstLeaf = node.index * 2 ** node.level;
      if (!hash) return { kind: 'NODE_MISSING', index: firstLeaf, message: `node level ${node.level} index ${node.index} is missing` };
      if (!hash.equals(Buffer.from(node.hash)))
        return {
          kind: 'NODE_MISMATCH',
          index: firstLeaf,
          message: `node level ${node.level} index ${node.index} (leaves from ${firstLeaf}): stored ${hash.toString('hex')}, recomputed ${toHex(node.hash)}`,
        };
      stored.delete(key);
      this.nodesChecked++;
    }
    for (const key of stored.keys()) {
      const [level, index] = key.split('/').map(Number);
      return { kind: 'NODE_EXTRA', index: index * 2 ** level, message: `node level ${level} index ${index} does not belong to the tree` };
    }
    return undefined;
  }

  /** Once every entry is in: the head's size, root and frontier, no node or checkpoint beyond the tree. */
  async checkEnd(dataSource: DataSource, entryCount: number, head: StoredHead): Promise<FsckProblem | undefined> {
    if (entryCount < head.size) return { kind: 'GAP', index: entryCount, message: `the head says ${head.size} entries, the log has ${entryCount}` };
    const [{ count: nodeCount }] = await dataSource.query(`SELECT count(*) AS count FROM ledger_nodes`);
    if (toSafeInteger(nodeCount, 'node count') !== this.nodesChecked)
      return { kind: 'NODE_EXTRA', index: this.range.size, message: `${nodeCount} interior nodes are stored, the tree has ${this.nodesChecked}` };
    if (this.nextCheckpoint < this.checkpoints.length) {
      const beyond = this.checkpoints[this.nextCheckpoint];
      return {
        kind: 'CHECKPOINT_BEYOND',
        index: beyond.size,
        message: `checkpoint at size ${beyond.size} is beyond the log's ${this.range.size} entries`,
      };
    }
    const root = toHex(this.range.root());
    if (head.size !== this.range.size || head.root !== root)
      return {
        kind: 'HEAD_MISMATCH',
        index: head.size,
        message: `head says size ${head.size} root ${head.root}; entries give size ${this.range.size} root ${root}`,
      };
    if (head.frontier !== this.range.hashes.map(toHex).join(','))
      return { kind: 'HEAD_MISMATCH', index: head.size, message: `the head's frontier differs from the one the entries give` };
    return undefined;
  }
}

interface ComputedNode {
  level: number;
  index: number;
  hash: Uint8Array;
}

/** Stored interior nodes whose last leaf lies in [start, end). */
async function readNodesCompletedIn(dataSource: DataSource, start: number, end: number): Promise<Map<string, Buffer>> {
  if (end <= start) throw new LedgerError('INVALID_ARGUMENT', 'empty range');
  // Node (level, i) covers [i * 2^level, (i + 1) * 2^level); it completes in this batch when its last
  // leaf (i + 1) * 2^level - 1 is in [start, end), i.e. i in [ceil((start + 1) / 2^level) - 1, floor(end / 2^level) - 1].
  const levels: number[] = [];
  const lows: string[] = [];
  const highs: string[] = [];
  for (let level = 1; 2 ** level <= end; level++) {
    const span = 2 ** level;
    const low = Math.ceil((start + 1) / span) - 1;
    const high = Math.floor(end / span) - 1;
    if (high < low) continue;
    levels.push(level);
    lows.push(String(low));
    highs.push(String(high));
  }
  const rows: { level: number; idx: string; hash: Buffer }[] = await dataSource.query(
    `SELECT n.level, n.idx, n.hash
       FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, low, high)
       JOIN ledger_nodes n ON n.level = r.level AND n.idx BETWEEN r.low AND r.high`,
    [levels, lows, highs],
  );
  return new Map(rows.map((r) => [`${r.level}/${r.idx}`, r.hash]));
}
