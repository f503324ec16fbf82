// Everything the portal reads: the service's public routes (through libs/verifier's LogClient and fetchJson,
// which check every field) and the chain, read directly from the browser through the JSON-RPC URL shown.
import {
  AnchorReader,
  LogClient,
  MAX_ENTRIES_PER_PAGE,
  fetchJson,
  findAnchoredContract,
  rehashEntry,
  parseAnchor,
  type Predecessor,
  type ServerAnchor,
  type ServerCheckpoint,
  type ServerEntry,
} from '@lethe/verifier';
import { toHex } from '@lethe/merkle';
import type { ChainCheckpoint, LogEntry } from './derive';

/**
 * The browser's fetch as a plain function, for the fetches the portal passes on or wraps (the receipt page
 * answers a pasted receipt through a wrapper): window.fetch called as a method of another object throws
 * "Illegal invocation".
 */
export const browserFetch: typeof fetch = (input, init) => globalThis.fetch(input, init);

/** GET /v1/portal/config: the chain auditors' browsers should use, as the service suggests it. */
export interface PortalConfig {
  rpcUrl: string | null;
  contract: string | null;
  chainId: string | null;
}

export async function loadPortalConfig(apiUrl: string): Promise<PortalConfig> {
  const body = (await fetchJson(apiUrl, 'v1/portal/config', 'GET /v1/portal/config', {
    timeoutMs: 10_000,
    fetch: browserFetch,
  })) as Partial<PortalConfig>;
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  return { rpcUrl: text(body?.rpcUrl), contract: text(body?.contract), chainId: text(body?.chainId) };
}

/** The log as read at one moment: the service's checkpoint and every entry up to it, re-hashed. */
export interface Snapshot {
  checkpoint: ServerCheckpoint;
  entries: LogEntry[];
}

export function toLogEntry(entry: ServerEntry): LogEntry {
  const rehashed = rehashEntry(entry);
  return { index: entry.index, leafHash: toHex(rehashed.leafHash), event: rehashed.event, problem: rehashed.failure?.message };
}

/** Reads every entry up to the service's checkpoint, a page at a time. */
export async function loadSnapshot(apiUrl: string, fetchImpl?: typeof fetch): Promise<Snapshot> {
  const log = new LogClient(apiUrl, { timeoutMs: 30_000, fetch: fetchImpl ?? browserFetch });
  const checkpoint = await log.getCheckpoint();
  const entries: LogEntry[] = [];
  for (let start = 0; start < checkpoint.treeSize; start += MAX_ENTRIES_PER_PAGE) {
    const page = await log.getEntries(start, Math.min(MAX_ENTRIES_PER_PAGE, checkpoint.treeSize - start));
    for (const entry of page.sort((a, b) => a.index - b.index)) entries.push(toLogEntry(entry));
  }
  return { checkpoint, entries };
}

/** An anchor as GET /v1/anchors reports it (server-reported, each field checked; the chain is read to check it). */
export type ServerAnchorRow = ServerAnchor;

export async function loadServerAnchors(apiUrl: string): Promise<ServerAnchorRow[]> {
  const rows: ServerAnchorRow[] = [];
  for (let start = 0; ; start += 1000) {
    const route = `GET /v1/anchors?start=${start}&limit=1000`;
    const page = await fetchJson(apiUrl, `v1/anchors?start=${start}&limit=1000`, route, { timeoutMs: 30_000, fetch: browserFetch });
    if (!Array.isArray(page)) throw new Error(`${route}: the answer is not an array`);
    rows.push(...page.map((row, i) => parseAnchor(row, `${route} [${i}]`)));
    if (page.length < 1000) return rows;
  }
}

/** The chain as read from the browser. */
export interface ChainView {
  rpcUrl: string;
  chainId: string;
  contract: string;
  contractSource: 'given' | 'service' | 'log';
  blockNumber: number;
  checkpoints: (ChainCheckpoint & { rootHash: string })[];
  /** Set when the contract succeeds a compromised one (a recovery): that one, and the checkpoint vouched for on it. */
  predecessor: Predecessor | null;
  /** Anchor transactions read (receipt status and block), by tx hash. */
  transactions: Map<string, { blockNumber: number; succeeded: boolean; anchoredSizes: number[] } | null>;
}

/** Reads the contract's checkpoints and the anchor transactions the service reports (at most the last `maxTx`). */
export async function readChain(
  apiUrl: string,
  rpcUrl: string,
  contract: string | null,
  source: ChainView['contractSource'],
  txHashes: string[],
  maxTx = 200,
): Promise<ChainView> {
  let address = contract;
  let contractSource = source;
  if (!address) {
    address = (await findAnchoredContract(new LogClient(apiUrl, { timeoutMs: 30_000, fetch: browserFetch }))).contract;
    contractSource = 'log';
  }
  const reader = await AnchorReader.connect(rpcUrl, address, { timeoutMs: 30_000 });
  try {
    const blockNumber = await reader.blockNumber();
    const [checkpoints, predecessor] = await Promise.all([reader.checkpoints(blockNumber), reader.predecessor(blockNumber)]);
    const transactions: ChainView['transactions'] = new Map();
    const wanted = txHashes.slice(-maxTx);
    await Promise.all(
      wanted.map(async (txHash) => {
        const tx = await reader.getAnchorTransaction(txHash);
        transactions.set(
          txHash,
          tx ? { blockNumber: tx.blockNumber, succeeded: tx.succeeded, anchoredSizes: tx.anchored.map((a) => a.treeSize) } : null,
        );
      }),
    );
    return { rpcUrl, chainId: reader.chainId, contract: reader.address, contractSource, blockNumber, checkpoints, predecessor, transactions };
  } finally {
    reader.close();
  }
}

/**
 * A fetch for one verification run: every page of entries is fetched from the service once and kept, so
 * that the checks of one run see one answer per page, and the portal can show exactly the entries verified.
 */
export class RecordingFetch {
  private readonly pages = new Map<string, Promise<{ status: number; body: string; contentType: string }>>();
  readonly entries = new Map<number, ServerEntry>();

  constructor(private readonly base: typeof fetch = browserFetch) {}

  readonly fetch: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (!url.pathname.endsWith('/v1/ledger/entries') || (init?.method ?? 'GET') !== 'GET') return this.base(input, init);
    const key = url.search;
    let page = this.pages.get(key);
    if (!page) {
      page = this.base(url, init).then(async (r) => ({
        status: r.status,
        body: await r.text(),
        contentType: r.headers.get('content-type') ?? '',
      }));
      this.pages.set(key, page);
      page.then((p) => this.record(p.body)).catch(() => undefined);
      page.catch(() => this.pages.delete(key));
    }
    const { status, body, contentType } = await page;
    return new Response(body, { status, headers: { 'content-type': contentType } });
  };

  private record(body: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return;
    }
    if (!Array.isArray(parsed)) return;
    for (const item of parsed as ServerEntry[]) {
      if (
        item &&
        typeof item.index === 'number' &&
        typeof item.event === 'string' &&
        typeof item.leafHash === 'string' &&
        !this.entries.has(item.index)
      ) {
        this.entries.set(item.index, item);
      }
    }
  }
}

/** A shard of a model version and the worker that trained it (GET /v1/models/{id}: versions[].tasks). */
export interface ShardTaskRow {
  shard: number;
  worker: string;
  seconds: number | null;
}

/** Per model, per version: the shards workers trained for it (versions trained in one worker have none). */
export type ShardTasks = Map<string, Map<number, ShardTaskRow[]>>;

/**
 * Which worker trained which shard of each model's versions, read with an ml or auditor key (the route is not
 * public: worker names are the operator's). Every field is checked; a model the service does not know is skipped.
 */
export async function loadShardTasks(apiUrl: string, apiKey: string, modelIds: string[]): Promise<ShardTasks> {
  const out: ShardTasks = new Map();
  for (const modelId of modelIds) {
    const route = `GET /v1/models/${modelId}`;
    const body = (await fetchJson(apiUrl, `v1/models/${encodeURIComponent(modelId)}`, route, {
      timeoutMs: 30_000,
      fetch: browserFetch,
      apiKey,
      notFoundIsNull: true,
    })) as { versions?: unknown } | null;
    if (body === null) continue;
    if (!Array.isArray(body.versions)) throw new Error(`${route}: versions is not an array`);
    const byVersion = new Map<number, ShardTaskRow[]>();
    for (const [i, v] of (body.versions as { version?: unknown; tasks?: unknown }[]).entries()) {
      if (!Number.isInteger(v?.version)) throw new Error(`${route}: versions[${i}].version is not an integer`);
      const tasks = v.tasks ?? [];
      if (!Array.isArray(tasks)) throw new Error(`${route}: versions[${i}].tasks is not an array`);
      byVersion.set(
        v.version as number,
        tasks.map((t: { shard?: unknown; worker?: unknown; seconds?: unknown }, k) => {
          if (!Number.isInteger(t?.shard) || typeof t.worker !== 'string' || !(t.seconds === null || typeof t.seconds === 'number'))
            throw new Error(`${route}: versions[${i}].tasks[${k}] is not {shard, worker, seconds}`);
          return { shard: t.shard as number, worker: t.worker, seconds: t.seconds as number | null };
        }),
      );
    }
    out.set(modelId, byVersion);
  }
  return out;
}
