import { LedgerError, LedgerEvent, LedgerEventType } from '@lethe/events';

/**
 * The fields each type of entry can be looked up by (`Ledger.findEntries`). Each list is backed by one
 * expression index over those fields, in this order, then the index (migrations IndexEntryKeys1764216610000,
 * IndexCommitmentsRoots1764216620000, IndexRetirementKeys1764216710000, IndexEvidenceKeys1764216810000 and
 * IndexDatasetVersions1764217100000): a query
 * that names the first field of its type's list is an index scan. The latest DATASET_VERSIONED of a dataset
 * (`newestFirst`, limit 1) reads one entry backwards along an index by dataset and entry index
 * (IndexLatestDatasetVersion1764218000000). BIAS_SCANNED by job: IndexBiasScans1764218600000.
 */
export const ENTRY_KEYS = {
  FORGET_REQUESTED: ['requestId'],
  SAMPLES_COMMITTED: ['commitmentsRoot'],
  MODEL_PUBLISHED: ['modelId', 'modelVersion'],
  UNLEARN_COMPLETED: ['modelId', 'modelVersion'],
  EVIDENCE_RECORDED: ['modelId', 'modelVersion'],
  ANCHORED: ['txHash'],
  VERSION_RETIRED: ['modelId', 'modelVersion'],
  CHECKPOINTS_DELETED: ['modelId'],
  FORGET_RESTORED: ['requestId'],
  DATASET_VERSIONED: ['datasetId', 'datasetVersion'],
  BIAS_SCANNED: ['jobId'],
} as const satisfies Partial<Record<LedgerEventType, readonly string[]>>;

/** A type of entry that can be looked up by its key fields. */
export type KeyedEventType = keyof typeof ENTRY_KEYS;

/** The event of type `T`. */
export type EventOfType<T extends LedgerEventType> = Extract<LedgerEvent, { type: T }>;

/** The key fields of type `T` (of every type, when `T` is a union) and the values they are compared with. */
export type EntryKeyFields<T extends KeyedEventType> = {
  [K in (typeof ENTRY_KEYS)[T][number]]?: K extends keyof EventOfType<T> ? EventOfType<T>[K] : never;
};

export interface EntryQuery<T extends KeyedEventType> {
  /** One type, or several that share the fields named (MODEL_PUBLISHED and UNLEARN_COMPLETED by model version). */
  type: T | readonly T[];
  /** Equal to each of these (none: every entry of the type). */
  fields?: EntryKeyFields<T>;
  /** Only entries after this index (for paging: the last index seen). */
  afterIndex?: number;
  /** 1..1000; 100 unless given. */
  limit?: number;
  /** Newest first (the latest entry of a key: `limit: 1`); not with `afterIndex`. */
  newestFirst?: boolean;
}

/** An entry found by `findEntries`: its event decoded and checked, of the type asked for. */
export interface FoundEntry<E extends LedgerEvent = LedgerEvent> {
  index: number;
  leafHash: string;
  event: E;
}

const DEFAULT_LIMIT = 100;

/**
 * The SQL of a query, checked first. Types and field names come from ENTRY_KEYS only and are written into
 * the text (the planner must see the type to use a partial index); values are parameters.
 */
export function buildEntryQuery(query: EntryQuery<KeyedEventType>, maxLimit: number): { sql: string; params: string[]; types: KeyedEventType[] } {
  const types = (typeof query.type === 'string' ? [query.type] : [...query.type]) as KeyedEventType[];
  if (types.length === 0) throw new LedgerError('INVALID_ARGUMENT', 'type must name at least one type', 'type');
  for (const type of types) {
    if (!Object.hasOwn(ENTRY_KEYS, type))
      throw new LedgerError('INVALID_ARGUMENT', `type ${String(type)} cannot be looked up; one of ${Object.keys(ENTRY_KEYS).join(', ')}`, 'type');
  }
  const params: string[] = [];
  const conditions = [`e.type IN (${types.map((t) => `'${t}'`).join(', ')})`];
  for (const [field, value] of Object.entries(query.fields ?? {})) {
    if (value === undefined) continue;
    const keyOf = types.find((t) => !(ENTRY_KEYS[t] as readonly string[]).includes(field));
    if (keyOf) throw new LedgerError('INVALID_ARGUMENT', `${field} is not a key field of ${keyOf}; its keys: ${ENTRY_KEYS[keyOf].join(', ')}`, field);
    if (typeof value !== 'string' && !Number.isSafeInteger(value))
      throw new LedgerError('INVALID_ARGUMENT', `${field} must be a string or an integer`, field);
    params.push(String(value));
    conditions.push(`(e.event::jsonb ->> '${field}') = $${params.length}`);
  }
  if (query.afterIndex !== undefined) {
    if (query.newestFirst) throw new LedgerError('INVALID_ARGUMENT', 'afterIndex pages oldest first: not with newestFirst', 'afterIndex');
    if (!Number.isSafeInteger(query.afterIndex) || query.afterIndex < 0)
      throw new LedgerError('INVALID_ARGUMENT', 'afterIndex must be a non-negative integer', 'afterIndex');
    params.push(String(query.afterIndex));
    conditions.push(`e.idx > $${params.length}`);
  }
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit)
    throw new LedgerError('INVALID_ARGUMENT', `limit must be between 1 and ${maxLimit}`, 'limit');
  params.push(String(limit));
  const sql = `SELECT e.idx::text AS idx, encode(e.leaf_hash, 'hex') AS leaf_hash, e.event FROM ledger_entries e
    WHERE ${conditions.join(' AND ')} ORDER BY e.idx${query.newestFirst ? ' DESC' : ''} LIMIT $${params.length}`;
  return { sql, params, types };
}
