// What the suite checks of a service's log after a fault: fsck (the operator's own check), and that no
// entry was written twice, read from the log as an auditor downloads it.
import { fsckLedger } from '@lethe/ledger';
import { connectToServiceDatabase } from '../../apps/cli/src/database';
import type { ApiClient } from './service';

/** One entry as GET /v1/ledger/entries serves it, its event parsed. */
export interface LogEntry {
  index: number;
  leafHash: string;
  event: { type: string; [field: string]: any };
}

/** Every entry of the log, 1,000 at a time. */
export async function downloadLog(api: ApiClient): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (;;) {
    const page = (await api.ok('GET', `/v1/ledger/entries?start=${entries.length}&limit=1000`)) as { index: number; leafHash: string; event: string }[];
    for (const e of page) entries.push({ index: e.index, leafHash: e.leafHash, event: JSON.parse(e.event) });
    if (page.length < 1000) return entries;
  }
}

/** What makes an entry of each type the same fact: two entries with the same key record it twice. */
const KEYS: Record<string, (e: any) => string> = {
  DATASET_REGISTERED: (e) => e.datasetId,
  SAMPLES_COMMITTED: (e) => e.commitmentsRoot,
  BATCH_LEARNED: (e) => `${e.modelId} v${e.modelVersion} shard ${e.shard} slice ${e.slice}`,
  CHECKPOINT_SAVED: (e) => `${e.modelId} shard ${e.shard} slice ${e.slice} ${e.checkpoint}`,
  MODEL_PUBLISHED: (e) => `${e.modelId} v${e.modelVersion}`,
  FORGET_REQUESTED: (e) => e.requestId,
  UNLEARN_COMPLETED: (e) => `${e.modelId} v${e.modelVersion}`,
  VERSION_RETIRED: (e) => `${e.modelId} v${e.modelVersion}`,
  // An anchor is one checkpoint on one contract; its transaction is logged once.
  ANCHORED: (e) => `${e.chainId} ${e.contract} size ${e.treeSize}`,
};

/** Every fact the log records more than once, named with the indices of its entries. */
export function findDuplicateEntries(entries: readonly LogEntry[]): string[] {
  const seen = new Map<string, number[]>();
  const note = (key: string, index: number) => seen.set(key, [...(seen.get(key) ?? []), index]);
  for (const { index, event } of entries) {
    const keyOf = KEYS[event.type];
    if (keyOf) note(`${event.type} ${keyOf(event)}`, index);
    if (event.type === 'ANCHORED') note(`ANCHORED tx ${event.txHash}`, index);
  }
  return [...seen].filter(([, indices]) => indices.length > 1).map(([key, indices]) => `${key} is logged ${indices.length} times (entries ${indices.join(', ')})`);
}

/**
 * What `lethe-audit fsck` runs (fsckLedger on the service's database, found from its DATA_DIR as the CLI finds
 * it), in this process: null when clean, else its first problem. Run as a CLI process, the TypeScript of the
 * CLI and the libraries was compiled again for every check (10-20 s of a crash trial on a loaded machine).
 */
export async function fsckProblem(dataDir: string): Promise<string | null> {
  const { dataSource, close } = await connectToServiceDatabase({ dataDir });
  try {
    const report = await fsckLedger(dataSource);
    return report.ok ? null : `fsck failed: ${JSON.stringify(report).slice(0, 2000)}`;
  } finally {
    await close();
  }
}
