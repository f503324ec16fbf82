// Reads AuditAnchor through ethers from any JSON-RPC URL, in Node or a browser. @lethe/chain's AnchorClient
// does the same and more, but its index also loads node:child_process and node:fs (the Hardhat launcher,
// the compiler) and its hex helpers use Buffer; so this is a small read-only twin on ethers alone.
import { Contract, FetchRequest, Interface, JsonRpcProvider, Network, getAddress, id, isAddress, isError } from 'ethers';
import { chainErrorText, redactRpcUrl, rememberRpcUrl } from '@lethe/redact';
import { VerifierError } from './errors';
import { mapLimit } from './map-limit';
import { describe } from './server-data';

/**
 * The view functions and the event the verifier reads: a subset of @lethe/chain's AUDIT_ANCHOR_ABI
 * (anchor-reader.spec.ts checks that every line is in it).
 */
export const AUDIT_ANCHOR_READ_ABI = [
  'function ANCHORER_ROLE() view returns (bytes32)',
  'function MAX_TREE_SIZE() view returns (uint64)',
  'function checkpointCount() view returns (uint256)',
  'function checkpoint(uint256 number) view returns (tuple(uint64 treeSize, bytes32 rootHash, uint64 timestamp))',
  'function checkpointNumberOf(uint64 treeSize) view returns (bool found, uint256 number)',
  'function predecessor() view returns (address predecessor, uint64 vouchedSize, bytes32 vouchedRoot)',
  'event CheckpointAnchored(uint256 indexed number, uint64 indexed treeSize, bytes32 indexed rootHash, uint64 oldSize)',
  'error AuditAnchorUnknownCheckpoint(uint256 number, uint256 count)',
] as const;

const READ_INTERFACE = new Interface(AUDIT_ANCHOR_READ_ABI);

/** A checkpoint as the contract holds it; hashes lowercase hex without 0x. */
export interface OnChainCheckpoint {
  /** Checkpoint number, from 0. */
  number: number;
  treeSize: number;
  rootHash: string;
  /** Timestamp (s) of the block that anchored it. */
  timestamp: number;
}

/** What a successor AuditAnchor records of the compromised one it succeeds; hashes lowercase hex without 0x. */
export interface Predecessor {
  /** Lowercase 0x address. */
  address: string;
  /** The checkpoint on it the successor's deployer vouched for (the successor's checkpoint 0). */
  vouchedSize: number;
  vouchedRoot: string;
}

/** A mined transaction, and what it anchored on this contract (CheckpointAnchored events). */
export interface AnchorTransaction {
  txHash: string;
  blockNumber: number;
  succeeded: boolean;
  anchored: { number: number; treeSize: number; rootHash: string; oldSize: number }[];
}

export interface AnchorReaderOptions {
  /** Per JSON-RPC request; 30 s unless given. */
  timeoutMs?: number;
}

type BlockTag = number | 'latest';

export class AnchorReader {
  private constructor(
    private readonly provider: JsonRpcProvider,
    private readonly contract: Contract,
    /** Lowercase 0x address. */
    readonly address: string,
    /** Decimal chain id of the endpoint. */
    readonly chainId: string,
    /** The endpoint as it may be shown: scheme, host and port (redactRpcUrl). */
    readonly rpcUrl: string,
  ) {}

  /**
   * Connects to the AuditAnchor at `address` through `rpcUrl`. Throws VerifierError INVALID_ARGUMENT for a
   * malformed URL or address, CHAIN_ERROR when the endpoint does not answer eth_chainId in time, and
   * NOT_AUDIT_ANCHOR when the address holds no code or code that does not answer as AuditAnchor. The URL's
   * secret parts are remembered first, so that no message shows them (rememberRpcUrl).
   */
  static async connect(rpcUrl: string, address: string, options: AnchorReaderOptions = {}): Promise<AnchorReader> {
    const url = parseRpcUrl(rpcUrl);
    rememberRpcUrl(url);
    if (typeof address !== 'string' || !isAddress(address) || !address.startsWith('0x')) {
      throw new VerifierError('INVALID_ARGUMENT', `contract ${describe(address)} is not a 0x-prefixed 20-byte address`);
    }
    const checksummed = getAddress(address);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const chainId = await readChainId(url, timeoutMs);
    const request = new FetchRequest(url);
    request.timeout = timeoutMs;
    const network = Network.from(BigInt(chainId));
    // batchStallTime 0: ethers would otherwise hold each call 10 ms hoping to batch it with others, and an
    // audit's calls mostly depend on each other; calls made together (in one tick) still go as one batch,
    // one HTTP request (in a browser, one CORS round trip instead of several).
    const provider = new JsonRpcProvider(request, network, { staticNetwork: network, cacheTimeout: -1, batchStallTime: 0 });
    const contract = new Contract(checksummed, READ_INTERFACE, provider);
    const reader = new AnchorReader(provider, contract, checksummed.toLowerCase(), chainId, redactRpcUrl(url));
    try {
      await reader.probe();
    } catch (err) {
      provider.destroy();
      throw err;
    }
    return reader;
  }

  /** The endpoint's latest block number (reads pinned to it see one state of the contract). */
  async blockNumber(): Promise<number> {
    return this.read('eth_blockNumber', () => this.provider.getBlockNumber());
  }

  async checkpointCount(blockTag: BlockTag = 'latest'): Promise<number> {
    const count = await this.read('checkpointCount()', () => this.contract.checkpointCount({ blockTag }) as Promise<bigint>);
    return toSafeNumber(count, 'checkpointCount()');
  }

  async checkpoint(number: number, blockTag: BlockTag = 'latest'): Promise<OnChainCheckpoint> {
    const raw = await this.read(
      `checkpoint(${number})`,
      () => this.contract.checkpoint(BigInt(number), { blockTag }) as Promise<CheckpointTuple>,
    );
    return {
      number,
      treeSize: toSafeNumber(raw.treeSize, `checkpoint(${number}).treeSize`),
      rootHash: raw.rootHash.slice(2).toLowerCase(),
      timestamp: toSafeNumber(raw.timestamp, `checkpoint(${number}).timestamp`),
    };
  }

  /** Every checkpoint as of `blockTag`, oldest first (read `concurrency` at a time). */
  async checkpoints(blockTag: BlockTag = 'latest', concurrency = 8): Promise<OnChainCheckpoint[]> {
    const count = await this.checkpointCount(blockTag);
    const numbers = Array.from({ length: count }, (_, n) => n);
    return mapLimit(numbers, concurrency, (n) => this.checkpoint(n, blockTag));
  }

  /** The checkpoint anchored at exactly `treeSize`, or null. */
  async findCheckpointByTreeSize(treeSize: number, blockTag: BlockTag = 'latest'): Promise<OnChainCheckpoint | null> {
    const [found, number] = await this.read(
      `checkpointNumberOf(${treeSize})`,
      () => this.contract.checkpointNumberOf(BigInt(treeSize), { blockTag }) as Promise<[boolean, bigint]>,
    );
    return found ? this.checkpoint(toSafeNumber(number, 'checkpointNumberOf().number'), blockTag) : null;
  }

  /**
   * The contract this one succeeds and the checkpoint on it vouched for, or null when it succeeds none (an
   * AuditAnchor deployed before successors existed has no predecessor(): null too).
   */
  async predecessor(blockTag: BlockTag = 'latest'): Promise<Predecessor | null> {
    let raw: [string, bigint, string];
    try {
      raw = (await this.contract.predecessor({ blockTag })) as [string, bigint, string];
    } catch (err) {
      const chainError = toChainError(err, 'predecessor()', this.rpcUrl);
      if (chainError) throw chainError;
      return null; // reverted (no such function) or answered nothing decodable
    }
    const [address, vouchedSize, vouchedRoot] = raw;
    if (/^0x0{40}$/.test(address)) return null;
    return {
      address: address.toLowerCase(),
      vouchedSize: toSafeNumber(vouchedSize, 'predecessor().vouchedSize'),
      vouchedRoot: vouchedRoot.slice(2).toLowerCase(),
    };
  }

  /** The mined transaction `txHash` and the checkpoints it anchored on this contract, or null if not mined. */
  async getAnchorTransaction(txHash: string): Promise<AnchorTransaction | null> {
    const receipt = await this.read(`eth_getTransactionReceipt(${txHash})`, () => this.provider.getTransactionReceipt(txHash));
    if (!receipt) return null;
    const anchored: AnchorTransaction['anchored'] = [];
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== this.address) continue;
      const parsed = safeParseLog(log);
      if (parsed?.name !== 'CheckpointAnchored') continue;
      anchored.push({
        number: toSafeNumber(parsed.args.number as bigint, 'CheckpointAnchored.number'),
        treeSize: toSafeNumber(parsed.args.treeSize as bigint, 'CheckpointAnchored.treeSize'),
        rootHash: (parsed.args.rootHash as string).slice(2).toLowerCase(),
        oldSize: toSafeNumber(parsed.args.oldSize as bigint, 'CheckpointAnchored.oldSize'),
      });
    }
    return { txHash: receipt.hash.toLowerCase(), blockNumber: receipt.blockNumber, succeeded: receipt.status === 1, anchored };
  }

  /** Stops the provider (no timers are left behind). */
  close(): void {
    this.provider.destroy();
  }

  /** Code at the address, and answers that only AuditAnchor gives. */
  private async probe(): Promise<void> {
    const at = `${this.address} on chain ${this.chainId}`;
    // The code and the answers are asked for at once (one round trip, not two); the code is judged first.
    const answers = Promise.all([
      this.contract.ANCHORER_ROLE() as Promise<string>,
      this.contract.MAX_TREE_SIZE() as Promise<bigint>,
      this.contract.checkpointCount() as Promise<bigint>,
    ]);
    answers.catch(() => undefined); // judged below, after the code
    const code = await this.read(`eth_getCode(${this.address})`, () => this.provider.getCode(this.address));
    if (code === '0x') throw new VerifierError('NOT_AUDIT_ANCHOR', `no contract at ${at}`, { url: this.rpcUrl });
    try {
      const [role, max] = await answers;
      if (role !== id('ANCHORER_ROLE') || max <= 0n) throw new Error(`ANCHORER_ROLE() = ${role}, MAX_TREE_SIZE() = ${max}`);
    } catch (err) {
      const chainError = toChainError(err, `probing ${at}`, this.rpcUrl);
      if (chainError) throw chainError;
      throw new VerifierError('NOT_AUDIT_ANCHOR', `the contract at ${at} does not answer as AuditAnchor`, { url: this.rpcUrl, cause: err });
    }
  }

  private async read<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw (
        toChainError(err, what, this.rpcUrl) ??
        new VerifierError('CHAIN_ERROR', `${what} at ${this.rpcUrl} failed: ${chainErrorText(err)}`, { url: this.rpcUrl, cause: err })
      );
    }
  }
}

type CheckpointTuple = { treeSize: bigint; rootHash: string; timestamp: bigint };

function parseRpcUrl(rpcUrl: string): string {
  let url: URL;
  try {
    url = new URL(rpcUrl);
  } catch {
    throw new VerifierError('INVALID_ARGUMENT', `RPC URL ${describe(rpcUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new VerifierError('INVALID_ARGUMENT', `RPC URL ${describe(rpcUrl)} is not an http(s) URL`);
  }
  return rpcUrl;
}

/**
 * eth_chainId with a deadline: a bare JsonRpcProvider would retry network detection forever. A failure says
 * what the answer was (a status, not JSON, the node's JSON-RPC error), never the body it came with.
 */
async function readChainId(rpcUrl: string, timeoutMs: number): Promise<string> {
  const shown = redactRpcUrl(rpcUrl);
  const fail = (reason: string, cause?: unknown) =>
    new VerifierError('CHAIN_ERROR', `JSON-RPC at ${shown} does not answer eth_chainId: ${reason}`, { url: shown, cause });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let text: string;
    try {
      const response = await fetch(rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
        signal: controller.signal,
      });
      text = await response.text();
      if (!response.ok) throw fail(`HTTP ${response.status}`);
    } catch (err) {
      if (err instanceof VerifierError) throw err;
      if (controller.signal.aborted) throw fail(`no answer within ${timeoutMs} ms`, err);
      throw fail(networkReason(err), err);
    }
    let body: { result?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw fail('the answer is not JSON');
    }
    const result = body?.result;
    if (typeof result === 'string' && /^0x[0-9a-fA-F]{1,64}$/.test(result)) return BigInt(result).toString();
    const error = body?.error;
    if (typeof error?.message === 'string') throw fail(chainErrorText(`JSON-RPC error ${String(error.code)}: ${error.message}`));
    throw fail('the answer holds no chain id');
  } finally {
    clearTimeout(timer);
  }
}

/** A transport failure as CHAIN_ERROR (`rpcUrl` redacted); null for what the contract itself answered (reverts, undecodable data). */
function toChainError(err: unknown, what: string, rpcUrl: string): VerifierError | null {
  if (err instanceof VerifierError) return err;
  if (isError(err, 'CALL_EXCEPTION') || isError(err, 'BAD_DATA')) return null;
  return new VerifierError('CHAIN_ERROR', `${what} at ${rpcUrl} failed: ${chainErrorText(err)}`, { url: rpcUrl, cause: err });
}

/** `ECONNREFUSED` rather than undici's bare "fetch failed". */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return chainErrorText(cause.message);
  return chainErrorText(err);
}

function safeParseLog(log: { topics: readonly string[]; data: string }): ReturnType<Interface['parseLog']> {
  try {
    return READ_INTERFACE.parseLog(log);
  } catch {
    return null;
  }
}

function toSafeNumber(value: bigint, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new VerifierError('CHAIN_ERROR', `${what} = ${value} is beyond 2^53`);
  return n;
}
