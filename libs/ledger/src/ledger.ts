import {
  CompactRange,
  NodeId,
  consistencyProofNodes,
  hashLeaf,
  inclusionProofNodes,
  rehashProof,
  rootFromNodes,
  rootNodes,
  toHex,
} from '@lethe/merkle';
import { LedgerError, LedgerEvent, LedgerEventType, canonicalizeEvent, decodeEvent } from '@lethe/events';
import { DataSource } from 'typeorm';
import { toSafeInteger } from './bigint.transformer';
import { EntryQuery, EventOfType, FoundEntry, KeyedEventType, buildEntryQuery } from './entry-query';

/** The state of the log at a size: what an anchor and an auditor compare. */
export interface Checkpoint {
  treeSize: number;
  rootHash: string;
}

/** What an append returns once the entry is durable. */
export interface AppendedEntry {
  index: number;
  leafHash: string;
  /** The checkpoint of the transaction that wrote it (it includes the entry). */
  treeSize: number;
  rootHash: string;
}

export interface LedgerEntry {
  index: number;
  leafHash: string;
  /** Canonical JSON of the event, byte for byte what was hashed. */
  event: string;
  /** When the database stored it (ISO 8601, UTC): the operator's word, not part of the leaf. */
  createdAt: string;
}

export interface InclusionProof {
  index: number;
  treeSize: number;
  leafHash: string;
  rootHash: string;
  proof: string[];
}

export interface ConsistencyProof {
  from: number;
  to: number;
  fromRoot: string;
  toRoot: string;
  proof: string[];
}

export interface LedgerOptions {
  /** Most events written by one transaction; more wait for the next. */
  maxBatch?: number;
}

interface Pending {
  texts: string[];
  types: LedgerEventType[];
  leafHashes: Uint8Array[];
  resolve: (entries: AppendedEntry[]) => void;
  reject: (error: unknown) => void;
}

/** Most entries one read returns. */
export const MAX_ENTRIES_PER_READ = 1000;

/**
 * The append-only RFC 9162 log on PostgreSQL.
 *
 * Appends are group-committed: calls that arrive while a transaction is running are written together
 * by the next one. Each transaction locks the single head row, so appenders in any number of processes
 * get consecutive, unique indices; entries, the interior nodes they complete, the new head and a
 * checkpoint are written in that one transaction, and a call resolves only after COMMIT returned, i.e.
 * once PostgreSQL has made it durable. A crash loses nothing acknowledged and leaves no gap.
 */
export class Ledger {
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private writing = false;

  constructor(
    private readonly dataSource: DataSource,
    options: LedgerOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 5000;
  }

  /** Appends events in order; resolves when they are durable. Invalid events reject before anything is written. */
  append(events: LedgerEvent[]): Promise<AppendedEntry[]> {
    if (events.length === 0) return Promise.resolve([]);
    let texts: string[];
    try {
      texts = events.map((e) => canonicalizeEvent(e));
    } catch (error) {
      return Promise.reject(error);
    }
    const encoder = new TextEncoder();
    const leafHashes = texts.map((t) => hashLeaf(encoder.encode(t)));
    const types = events.map((e) => e.type);
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, types, leafHashes, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Appends one event; resolves with its entry once durable. */
  async appendOne(event: LedgerEvent): Promise<AppendedEntry> {
    const [entry] = await this.append([event]);
    return entry;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch: Pending[] = [];
        let count = 0;
        while (this.queue.length > 0 && (batch.length === 0 || count + this.queue[0].texts.length <= this.maxBatch)) {
          const next = this.queue.shift()!;
          batch.push(next);
          count += next.texts.length;
        }
        try {
          const results = await this.writeBatch(batch);
          batch.forEach((p, i) => p.resolve(results[i]));
        } catch (error) {
          batch.forEach((p) => p.reject(error));
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<AppendedEntry[][]> {
    return this.dataSource.transaction(async (manager) => {
      const [head] = await manager.query(`SELECT tree_size, frontier FROM ledger_head WHERE id = 1 FOR UPDATE`);
      const size = toSafeInteger(head.tree_size, 'tree size');
      const range = CompactRange.fromNodes(
        size,
        (head.frontier as Buffer[]).map((h) => new Uint8Array(h)),
      );

      const leafHashes = batch.flatMap((p) => p.leafHashes);
      const nodeLevels: number[] = [];
      const nodeIndices: string[] = [];
      const nodeHashes: Buffer[] = [];
      range.append(leafHashes, (id, hash) => {
        if (id.level === 0) return;
        nodeLevels.push(id.level);
        nodeIndices.push(String(id.index));
        nodeHashes.push(Buffer.from(hash));
      });
      const newSize = range.size;
      const root = Buffer.from(range.root());

      // Entries, nodes, checkpoint and head in one statement: one round trip while holding the lock.
      await manager.query(
        `WITH entries AS (
           INSERT INTO ledger_entries (idx, leaf_hash, type, event)
           SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[])
         ), nodes AS (
           INSERT INTO ledger_nodes (level, idx, hash)
           SELECT * FROM unnest($5::smallint[], $6::bigint[], $7::bytea[])
         ), checkpoint AS (
           INSERT INTO ledger_checkpoints (tree_size, root_hash) VALUES ($8, $9)
         )
         UPDATE ledger_head SET tree_size = $8, root_hash = $9, frontier = $10 WHERE id = 1`,
        [
          leafHashes.map((_, i) => String(size + i)),
          leafHashes.map((h) => Buffer.from(h)),
          batch.flatMap((p) => p.types),
          batch.flatMap((p) => p.texts),
          nodeLevels,
          nodeIndices,
          nodeHashes,
          String(newSize),
          root,
          range.hashes.map((h) => Buffer.from(h)),
        ],
      );

      const rootHash = root.toString('hex');
      let index = size;
      return batch.map((p) =>
        p.leafHashes.map((h) => ({ index: index++, leafHash: toHex(h), treeSize: newSize, rootHash })),
      );
    });
  }

  /**
   * Reads stored perfect-subtree hashes (leaves from entries, interior nodes from ledger_nodes) in one
   * query, together with the log's size, which must be at least `treeSize` (else OUT_OF_RANGE naming `what`).
   */
  private async readNodes(ids: NodeId[], treeSize: number, what: string): Promise<Uint8Array[]> {
    const interior = ids.filter((id) => id.level > 0);
    const rows: { level: number; idx: string; hash: Buffer | null }[] = await this.preparedQuery(
      'lethe_read_nodes',
      `SELECT -1 AS level, tree_size AS idx, NULL::bytea AS hash FROM ledger_head WHERE id = 1
       UNION ALL
       SELECT 0, e.idx, e.leaf_hash FROM ledger_entries e WHERE e.idx = ANY($3::bigint[])
       UNION ALL
       SELECT n.level, n.idx, n.hash FROM ledger_nodes n
         JOIN unnest($1::smallint[], $2::bigint[]) AS want(level, idx) ON n.level = want.level AND n.idx = want.idx`,
      [
        interior.map((id) => id.level),
        interior.map((id) => String(id.index)),
        ids.filter((id) => id.level === 0).map((id) => String(id.index)),
      ],
    );
    const size = toSafeInteger(rows.find((r) => r.level === -1)!.idx, 'tree size');
    if (treeSize > size) throw new LedgerError('OUT_OF_RANGE', `${what} ${treeSize} is beyond the log's size ${size}`, what);
    const found = new Map(rows.map((r) => [`${r.level}/${r.idx}`, r.hash]));
    return ids.map((id) => {
      const hash = found.get(`${id.level}/${id.index}`);
      if (!hash) throw new LedgerError('CORRUPT', `stored node level ${id.level} index ${id.index} is missing`);
      return new Uint8Array(hash);
    });
  }

  /**
   * Runs a named prepared statement on the pool under TypeORM: PostgreSQL plans it once per connection,
   * which matters on the proof path, where planning took longer than executing.
   */
  private async preparedQuery<T>(name: string, text: string, values: unknown[]): Promise<T[]> {
    const pool = (this.dataSource.driver as unknown as { master: { query(q: object): Promise<{ rows: T[] }> } }).master;
    return (await pool.query({ name, text, values })).rows;
  }

  /** The latest checkpoint (size and root of the whole log). */
  async getCheckpoint(): Promise<Checkpoint> {
    const [head] = await this.dataSource.query(`SELECT tree_size, root_hash FROM ledger_head WHERE id = 1`);
    return { treeSize: toSafeInteger(head.tree_size, 'tree size'), rootHash: (head.root_hash as Buffer).toString('hex') };
  }

  /** Entries [start, start + limit) that exist, in index order. */
  async getEntries(start: number, limit: number): Promise<LedgerEntry[]> {
    checkCount(start, 'start');
    checkCount(limit, 'limit');
    if (limit < 1 || limit > MAX_ENTRIES_PER_READ)
      throw new LedgerError('INVALID_ARGUMENT', `limit must be between 1 and ${MAX_ENTRIES_PER_READ}`, 'limit');
    const rows = await this.preparedQuery<EntryRow>(
      'lethe_read_entries',
      `SELECT ${ENTRY_COLUMNS} FROM ledger_entries e WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx`,
      [String(start), String(start + limit)],
    );
    return rows.map(toLedgerEntry);
  }

  /** Entries of the given types, in index order, from `start` on. */
  async getEntriesByType(types: LedgerEventType[], start: number, limit: number): Promise<LedgerEntry[]> {
    checkCount(start, 'start');
    const rows = await this.preparedQuery<EntryRow>(
      'lethe_read_entries_by_type',
      `SELECT ${ENTRY_COLUMNS} FROM ledger_entries e WHERE e.type = ANY($1::text[]) AND e.idx >= $2 ORDER BY e.idx LIMIT $3`,
      [types, String(start), Math.min(limit, MAX_ENTRIES_PER_READ)],
    );
    return rows.map(toLedgerEntry);
  }

  /**
   * Entries of a type whose key fields (ENTRY_KEYS) have the given values, in index order, decoded and
   * checked: e.g. the FORGET_REQUESTED of a request, `{ type: 'FORGET_REQUESTED', fields: { requestId } }`.
   * An index scan (one expression index per type's keys), however long the log.
   */
  async findEntries<T extends KeyedEventType>(query: EntryQuery<T>): Promise<FoundEntry<EventOfType<T>>[]> {
    const { sql, params, types } = buildEntryQuery(query, MAX_ENTRIES_PER_READ);
    const rows: { idx: string; leaf_hash: string; event: string }[] = await this.dataSource.query(sql, params);
    return rows.map((row) => {
      const index = toSafeInteger(row.idx, 'index');
      const event = decodeEvent(row.event);
      if (!(types as string[]).includes(event.type))
        throw new LedgerError('CORRUPT', `entry ${index} is stored as one of ${types.join(', ')} but holds ${event.type}`);
      return { index, leafHash: row.leaf_hash, event: event as EventOfType<T> };
    });
  }

  /**
   * How many entries from index `start` on are of none of the `except` types, counted up to `atMost` only
   * (after a long outage the log may be far ahead: the count stops there instead of scanning on).
   */
  async countEntries(options: { start: number; except?: LedgerEventType[]; atMost: number }): Promise<number> {
    checkCount(options.start, 'start');
    checkCount(options.atMost, 'atMost');
    const [{ count }] = await this.dataSource.query(
      `SELECT count(*)::int AS count
         FROM (SELECT 1 FROM ledger_entries e WHERE e.idx >= $1 AND e.type <> ALL($2::text[]) LIMIT $3) AS w`,
      [String(options.start), options.except ?? [], options.atMost],
    );
    return count as number;
  }

  /** The event at an index, decoded. */
  async getEvent(index: number): Promise<LedgerEvent> {
    const [entry] = await this.getEntries(index, 1);
    if (!entry) throw new LedgerError('OUT_OF_RANGE', `index ${index} is not in the log`, 'index');
    return decodeEvent(entry.event);
  }

  /** Root of the tree of the first `treeSize` entries. */
  async getRoot(treeSize: number): Promise<string> {
    checkCount(treeSize, 'treeSize');
    return toHex(rootFromNodes(await this.readNodes(rootNodes(treeSize), treeSize, 'treeSize')));
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of size `treeSize`, read from stored nodes. */
  async getInclusionProof(index: number, treeSize: number): Promise<InclusionProof> {
    checkCount(index, 'index');
    checkCount(treeSize, 'treeSize');
    if (index >= treeSize)
      throw new LedgerError('OUT_OF_RANGE', `index ${index} is beyond treeSize ${treeSize}`, 'index');
    const nodes = inclusionProofNodes(index, treeSize);
    const rootIds = rootNodes(treeSize);
    const hashes = await this.readNodes([...nodes.ids, ...rootIds, { level: 0, index }], treeSize, 'treeSize');
    const proof = rehashProof(nodes, hashes.slice(0, nodes.ids.length));
    const root = rootFromNodes(hashes.slice(nodes.ids.length, nodes.ids.length + rootIds.length));
    return {
      index,
      treeSize,
      leafHash: toHex(hashes[hashes.length - 1]),
      rootHash: toHex(root),
      proof: proof.map(toHex),
    };
  }

  /** RFC 9162 consistency proof between the trees of sizes `from` and `to`, read from stored nodes. */
  async getConsistencyProof(from: number, to: number): Promise<ConsistencyProof> {
    checkCount(from, 'from');
    checkCount(to, 'to');
    if (from < 1) throw new LedgerError('INVALID_ARGUMENT', 'from must be at least 1 (there is no proof from the empty tree)', 'from');
    if (from > to) throw new LedgerError('INVALID_ARGUMENT', `from ${from} is larger than to ${to}`, 'from');
    const nodes = consistencyProofNodes(from, to);
    const fromIds = rootNodes(from);
    const toIds = rootNodes(to);
    const hashes = await this.readNodes([...nodes.ids, ...fromIds, ...toIds], to, 'to');
    let at = 0;
    const take = (n: number) => hashes.slice(at, (at += n));
    const proof = rehashProof(nodes, take(nodes.ids.length));
    return {
      from,
      to,
      fromRoot: toHex(rootFromNodes(take(fromIds.length))),
      toRoot: toHex(rootFromNodes(take(toIds.length))),
      proof: proof.map(toHex),
    };
  }
}

/** Hashes as hex and times as ISO text from PostgreSQL itself: cheaper than parsing bytea and timestamps here. */
// (ORDER BY must name e.idx: the bare name would be this text alias and sort "10" before "2".)
const ENTRY_COLUMNS = `e.idx::text AS idx, encode(e.leaf_hash, 'hex') AS leaf_hash, e.event,
  to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`;

interface EntryRow {
  idx: string;
  leaf_hash: string;
  event: string;
  created_at: string;
}

function toLedgerEntry(row: EntryRow): LedgerEntry {
  return { index: toSafeInteger(row.idx, 'index'), leafHash: row.leaf_hash, event: row.event, createdAt: row.created_at };
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new LedgerError('INVALID_ARGUMENT', `${what} must be a non-negative integer`, what);
}
