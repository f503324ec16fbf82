// A typed client for the service's read-only ledger and anchor routes. Global fetch only, so it runs in
// browsers too. Every answer is checked field by field (server-data.ts); every failure is a VerifierError
// SERVER_ERROR saying which request failed and how (unreachable, timeout, status, not JSON, bad field).
import { VerifierError } from './errors';
import { NOT_FOUND, parseHttpUrl, requestJson } from './fetch-json';
import {
  describe,
  parseAnchor,
  parseCheckpoint,
  parseConsistencyProof,
  parseEntries,
  parseInclusionProof,
  type ServerAnchor,
  type ServerCheckpoint,
  type ServerConsistencyProof,
  type ServerEntry,
  type ServerInclusionProof,
} from './server-data';

/** Most entries the service returns per request (its MAX_ENTRIES_PER_READ). */
export const MAX_ENTRIES_PER_PAGE = 1000;

export interface LogClientOptions {
  /** Per request, body included; 30 s unless given. */
  timeoutMs?: number;
  /** fetch to use (tests, or a browser's own); the global one unless given. */
  fetch?: typeof fetch;
}

export class LogClient {
  readonly apiUrl: string;
  private readonly base: URL;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  /** Throws VerifierError INVALID_ARGUMENT unless `apiUrl` is an http(s) URL. */
  constructor(apiUrl: string, options: LogClientOptions = {}) {
    this.base = parseHttpUrl(apiUrl, 'API URL');
    if (!this.base.pathname.endsWith('/')) this.base.pathname += '/';
    this.apiUrl = this.base.toString();
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!Number.isSafeInteger(this.timeoutMs) || this.timeoutMs <= 0) {
      throw new VerifierError('INVALID_ARGUMENT', `timeoutMs must be a positive integer, got ${describe(options.timeoutMs)}`);
    }
    if (options.fetch === undefined && typeof globalThis.fetch !== 'function') {
      throw new VerifierError('INVALID_ARGUMENT', 'no fetch: this runtime has no global fetch');
    }
    // Browsers refuse window.fetch called as a method of another object ("Illegal invocation"): bind it.
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async getCheckpoint(): Promise<ServerCheckpoint> {
    const route = 'GET /v1/ledger/checkpoint';
    return parseCheckpoint(await this.getJson('v1/ledger/checkpoint', {}, route), route);
  }

  /** Entries [start, start + limit) as the service returns them; the caller checks indices and contents. */
  async getEntries(start: number, limit: number): Promise<ServerEntry[]> {
    checkCount(start, 'start');
    checkCount(limit, 'limit');
    if (limit < 1 || limit > MAX_ENTRIES_PER_PAGE) {
      throw new VerifierError('INVALID_ARGUMENT', `limit ${limit} is not in 1..${MAX_ENTRIES_PER_PAGE}`);
    }
    const route = `GET /v1/ledger/entries?start=${start}&limit=${limit}`;
    const entries = parseEntries(await this.getJson('v1/ledger/entries', { start, limit }, route), route);
    if (entries.length > limit) throw new VerifierError('SERVER_ERROR', `${route}: ${entries.length} entries, want at most ${limit}`);
    return entries;
  }

  async getInclusionProof(index: number, treeSize: number): Promise<ServerInclusionProof> {
    checkCount(index, 'index');
    checkCount(treeSize, 'treeSize');
    const route = `GET /v1/ledger/proofs/inclusion?index=${index}&treeSize=${treeSize}`;
    const proof = parseInclusionProof(await this.getJson('v1/ledger/proofs/inclusion', { index, treeSize }, route), route);
    if (proof.index !== index || proof.treeSize !== treeSize) {
      throw new VerifierError('SERVER_ERROR', `${route}: answered a proof of index ${proof.index} in size ${proof.treeSize}`);
    }
    return proof;
  }

  async getConsistencyProof(from: number, to: number): Promise<ServerConsistencyProof> {
    checkCount(from, 'from');
    checkCount(to, 'to');
    const route = `GET /v1/ledger/proofs/consistency?from=${from}&to=${to}`;
    const proof = parseConsistencyProof(await this.getJson('v1/ledger/proofs/consistency', { from, to }, route), route);
    if (proof.from !== from || proof.to !== to) {
      throw new VerifierError('SERVER_ERROR', `${route}: answered a proof from ${proof.from} to ${proof.to}`);
    }
    return proof;
  }

  /** The latest confirmed anchor the service recorded, or null when it says none (404). */
  async getLatestAnchor(): Promise<ServerAnchor | null> {
    const route = 'GET /v1/anchors/latest';
    const body = await this.getJson('v1/anchors/latest', {}, route, [404]);
    return body === NOT_FOUND ? null : parseAnchor(body, route);
  }

  private async getJson(path: string, query: Record<string, number>, route: string, notFoundOn: number[] = []): Promise<unknown> {
    const url = new URL(path, this.base);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
    return requestJson(url, route, { timeoutMs: this.timeoutMs, fetch: this.fetchImpl, notFoundOn });
  }
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VerifierError('INVALID_ARGUMENT', `${what} must be a safe integer >= 0, got ${describe(value)}`);
  }
}
