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
  const [head] = await dataSource.query(`SELECT tree_size, root_hash, frontier FROM ledger_head WHERE id = 1`);
  const headSize = toSafeInteger(head.tree_size, 'tree size');
  const headRoot = (head.root_hash as Buffer).toString('hex');
  const headFrontier = (head.frontier as Buffer[]).map((h) => h.toString('hex')).join(',');
  const checkpointRows: { tree_size: string; root_hash: Buffer }[] = await dataSource.query(
    `SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY tree_size`,
  );
  const checkpoints = checkpointRows.map((r) => ({ size: toSafeInteger(r.tree_size, 'checkpoint size'), root: r.root_hash.toString('hex') }));
  const [{ max }] = await dataSource.query(`SELECT max(idx) AS max FROM ledger_entries`);
  const entryCount = max === null ? 0 : toSafeInteger(max, 'index') + 1;
  const total = Math.max(entryCount, headSize);

  const range = CompactRange.empty();
  let nodesChecked = 0;
  let nextCheckpoint = 0;
  const report = (problem: FsckProblem): FsckReport => ({
    ok: false,
    entries: range.size,
    nodes: nodesChecked,
    checkpoints: nextCheckpoint,
    rootHash: toHex(range.root()),
    firstProblem: problem,
  });
  const encoder = new TextEncoder();

  for (let start = 0; start < entryCount; start += batchSize) {
    const end = Math.min(start + batchSize, entryCount);
    const rows: { idx: string; leaf_hash: Buffer; event: string }[] = await dataSource.query(
      `SELECT idx, leaf_hash, event FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [String(start), String(end)],
    );
    // Stored interior nodes completed by this batch, by level.
    const stored = await readNodesCompletedIn(dataSource, start, end);
    const computed: { level: number; index: number; hash: Uint8Array }[] = [];
    let expected = start;
    for (const row of rows) {
      const index = toSafeInteger(row.idx, 'index');
      if (index !== expected) return report({ kind: 'GAP', index: expected, message: `entry ${expected} is missing` });
      try {
        decodeEvent(row.event);
      } catch (error) {
        return report({ kind: 'BAD_EVENT', index, message: `entry ${index}: ${(error as Error).message}` });
      }
      const leafHash = hashLeaf(encoder.encode(row.event));
      if (!row.leaf_hash.equals(Buffer.from(leafHash)))
        return report({
          kind: 'LEAF_MISMATCH',
          index,
          message: `entry ${index}: stored leaf hash ${row.leaf_hash.toString('hex')}, its JSON hashes to ${toHex(leafHash)}`,
        });
      range.append([leafHash], (id, hash) => {
        if (id.level > 0) computed.push({ level: id.level, index: id.index, hash });
      });
      expected++;
      while (nextCheckpoint < checkpoints.length && checkpoints[nextCheckpoint].size === range.size) {
        const root = toHex(range.root());
        if (root !== checkpoints[nextCheckpoint].root)
          return report({
            kind: 'CHECKPOINT_MISMATCH',
            index: range.size,
            message: `checkpoint at size ${range.size}: stored root ${checkpoints[nextCheckpoint].root}, recomputed ${root}`,
          });
        nextCheckpoint++;
      }
    }
    if (expected !== end) return report({ kind: 'GAP', index: expected, message: `entry ${expected} is missing` });
    for (const node of computed) {
      const key = `${node.level}/${node.index}`;
      const hash = stored.get(key);
      const firstLeaf = node.index * 2 ** node.level;
      if (!hash)
        return report({ kind: 'NODE_MISSING', index: firstLeaf, message: `node level ${node.level} index ${node.index} is missing` });
      if (!hash.equals(Buffer.from(node.hash)))
        return report({
          kind: 'NODE_MISMATCH',
          index: firstLeaf,
          message: `node level ${node.level} index ${node.index} (leaves from ${firstLeaf}): stored ${hash.toString('hex')}, recomputed ${toHex(node.hash)}`,
        });
      stored.delete(key);
      nodesChecked++;
    }
    for (const key of stored.keys()) {
      const [level, index] = key.split('/').map(Number);
      return report({ kind: 'NODE_EXTRA', index: index * 2 ** level, message: `node level ${level} index ${index} does not belong to the tree` });
    }
    options.onProgress?.(end, total);
  }
  if (entryCount < headSize)
    return report({ kind: 'GAP', index: entryCount, message: `the head says ${headSize} entries, the log has ${entryCount}` });
  const [{ count: nodeCount }] = await dataSource.query(`SELECT count(*) AS count FROM ledger_nodes`);
  if (toSafeInteger(nodeCount, 'node count') !== nodesChecked)
    return report({ kind: 'NODE_EXTRA', index: range.size, message: `${nodeCount} interior nodes are stored, the tree has ${nodesChecked}` });
  if (nextCheckpoint < checkpoints.length)
    return report({
      kind: 'CHECKPOINT_BEYOND',
      index: checkpoints[nextCheckpoint].size,
      message: `checkpoint at size ${checkpoints[nextCheckpoint].size} is beyond the log's ${range.size} entries`,
    });
  const root = toHex(range.root());
  if (headSize !== range.size || headRoot !== root)
    return report({
      kind: 'HEAD_MISMATCH',
      index: headSize,
      message: `head says size ${headSize} root ${headRoot}; entries give size ${range.size} root ${root}`,
    });
  if (headFrontier !== range.hashes.map(toHex).join(','))
    return report({ kind: 'HEAD_MISMATCH', index: headSize, message: `the head's frontier differs from the one the entries give` });
  return { ok: true, entries: range.size, nodes: nodesChecked, checkpoints: checkpoints.length, rootHash: root };
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
