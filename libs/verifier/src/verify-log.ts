// The auditor's full check of a log: every entry re-hashed, every root recomputed, every anchor compared
// with the chain. Trusts only the chain; the service is only where the data comes from.
import { isAddress } from 'ethers';
import { CompactRange, MerkleError, fromHex, toHex, verifyConsistency } from '@lethe/merkle';
import type { Anchored } from '@lethe/events';
import { redactRpcUrl } from '@lethe/redact';
import { AnchorReader, type OnChainCheckpoint } from './anchor-reader';
import { VerifierError, type VerificationFailure, type VerificationWarning } from './errors';
import { FailureList } from './failure-list';
import { connectPredecessors, findAnchoredContract, type AnchoredContract, type PredecessorLink } from './find-contract';
import { parseHttpUrl } from './fetch-json';
import { LogClient, MAX_ENTRIES_PER_PAGE } from './log-client';
import { mapLimit } from './map-limit';
import { rehashEntry } from './rehash-entry';
import { RetirementAudit } from './retirement-audit';
import type { ServerCheckpoint, ServerEntry } from './server-data';

export interface VerifyLogOptions {
  /** The service's base URL, e.g. http://localhost:3000. */
  apiUrl: string;
  /** Any JSON-RPC endpoint of the chain the log is anchored on. */
  rpcUrl: string;
  /** AuditAnchor's address; unless given, taken from the log's latest ANCHORED entry. */
  contract?: string;
  /** Called after each page of entries with how many are re-hashed so far and how many there are. */
  onProgress?: (verified: number, total: number) => void;
  /** Per HTTP request and per JSON-RPC call; 30 s unless given. */
  timeoutMs?: number;
  /** Most failures listed (more are counted in failuresOmitted); 100 unless given. */
  maxFailures?: number;
  /** fetch for the service's routes (the global one unless given). */
  fetch?: typeof fetch;
}

export interface VerifyLogReport {
  /** True when nothing failed. */
  ok: boolean;
  apiUrl: string;
  /** The JSON-RPC endpoint as it may be shown: scheme, host and port (redactRpcUrl). */
  rpcUrl: string;
  /** Decimal chain id of the RPC endpoint, once it answered. */
  chainId: string | null;
  /** AuditAnchor's address (lowercase), and where it came from. */
  contract: string | null;
  contractSource: 'option' | 'log' | null;
  /** Block the on-chain checkpoints were read at. */
  blockNumber: number | null;
  /** The service's checkpoint: the size verified. */
  treeSize: number | null;
  /** Entries downloaded and re-hashed. */
  entries: number;
  /** The root recomputed from all entries (null unless every entry up to treeSize was read). */
  rootHash: string | null;
  anchors: {
    /** Checkpoints on the contract. */
    onChain: number;
    /** On-chain checkpoints compared with the root recomputed at their size. */
    checked: number;
    latest: OnChainCheckpoint | null;
    /** Whether the consistency proof from the latest on-chain checkpoint to the service's checkpoint verified. */
    latestConsistent: boolean | null;
    /** ANCHORED entries in the log, those checked against their transaction, and those naming another
     *  chain or contract (which this endpoint cannot check). */
    logged: number;
    loggedChecked: number;
    loggedElsewhere: number;
  };
  /** The contracts the verified one succeeds (recoveries after a key compromise), newest first; empty for none. */
  predecessors: PredecessorCheck[];
  failures: VerificationFailure[];
  /** Failures found beyond maxFailures. */
  failuresOmitted: number;
  /** What must be flagged even when everything verified: a RECOVERY per predecessor. */
  warnings: VerificationWarning[];
}

/** A compromised contract the verified one succeeds, as the audit checked it. */
export interface PredecessorCheck {
  /** Lowercase 0x address. */
  contract: string;
  /** The contract that succeeds it. */
  successor: string;
  /** The checkpoint on it the successor vouches for: the history carries on from there. */
  vouchedSize: number;
  vouchedRoot: string;
  /** Its checkpoints up to the vouched size, all compared with the root recomputed at their size. */
  checked: number;
  /** Its checkpoints beyond the vouched size: not part of the history (what a stolen key anchored among them). */
  disregarded: OnChainCheckpoint[];
}

/** A predecessor's checkpoints up to its vouched size: part of the history, checked like the contract's own. */
interface TrustedCheckpoints {
  link: PredecessorLink;
  check: PredecessorCheck;
  checkpoints: OnChainCheckpoint[];
}

/**
 * Verifies the whole log the service at `apiUrl` shows against AuditAnchor on `rpcUrl`: downloads every
 * entry (MAX_ENTRIES_PER_PAGE at a time), re-hashes it, recomputes the root with a CompactRange, compares it
 * with the service's checkpoint and every on-chain checkpoint with the root at its size, checks every
 * ANCHORED entry against its transaction, and the latest on-chain checkpoint against the service's
 * checkpoint with a consistency proof verified locally. It also checks what the entries say about
 * retirement (RetirementAudit): every version that learned what an unlearning forgot is retired by a
 * VERSION_RETIRED entry (NOT_RETIRED otherwise), and no checkpoint a live version uses is deleted.
 *
 * Findings (including an unreachable service or chain) are failures in the report; only a malformed
 * argument throws (VerifierError INVALID_ARGUMENT).
 */
export async function verifyLog(options: VerifyLogOptions): Promise<VerifyLogReport> {
  const log = new LogClient(options.apiUrl, { timeoutMs: options.timeoutMs, fetch: options.fetch });
  parseHttpUrl(options.rpcUrl, 'RPC URL');
  if (options.contract !== undefined && !(isAddress(options.contract) && options.contract.startsWith('0x'))) {
    throw new VerifierError('INVALID_ARGUMENT', `contract ${JSON.stringify(options.contract)} is not a 0x-prefixed 20-byte address`);
  }
  const audit = new LogAudit(log, options);
  try {
    await audit.run();
  } catch (err) {
    if (!(err instanceof VerifierError) || err.code === 'INVALID_ARGUMENT') throw err;
    audit.failures.add(err.toFailure());
  } finally {
    audit.close();
  }
  return audit.finish();
}

interface LoggedAnchor {
  index: number;
  event: Anchored;
}

class LogAudit {
  readonly failures: FailureList;
  readonly report: VerifyLogReport;
  reader?: AnchorReader;
  private predecessors: TrustedCheckpoints[] = [];
  private readonly logged: LoggedAnchor[] = [];
  private readonly retirement = new RetirementAudit();
  /** Roots recomputed at the on-chain checkpoints' sizes. */
  private readonly rootsAt = new Map<number, Uint8Array>();

  constructor(
    private readonly log: LogClient,
    private readonly options: VerifyLogOptions,
  ) {
    this.failures = new FailureList(options.maxFailures ?? 100);
    this.report = {
      ok: false,
      apiUrl: log.apiUrl,
      rpcUrl: redactRpcUrl(options.rpcUrl),
      chainId: null,
      contract: null,
      contractSource: null,
      blockNumber: null,
      treeSize: null,
      entries: 0,
      rootHash: null,
      anchors: { onChain: 0, checked: 0, latest: null, latestConsistent: null, logged: 0, loggedChecked: 0, loggedElsewhere: 0 },
      predecessors: [],
      failures: this.failures.items,
      failuresOmitted: 0,
      warnings: [],
    };
  }

  close(): void {
    this.reader?.close();
    for (const { link } of this.predecessors) link.reader.close();
  }

  /** Sets `ok` once everything that could be checked was. */
  finish(): VerifyLogReport {
    this.report.failuresOmitted = this.failures.omitted;
    this.report.ok = this.failures.count === 0;
    return this.report;
  }

  async run(): Promise<void> {
    const report = this.report;
    let found: AnchoredContract | undefined;
    if (this.options.contract === undefined) {
      found = await findAnchoredContract(this.log);
      if (found.failure) this.failures.add(found.failure);
    }
    const address = this.options.contract ?? found!.contract;
    report.contractSource = found ? 'log' : 'option';
    report.contract = address.toLowerCase();
    const reader = await AnchorReader.connect(this.options.rpcUrl, address, { timeoutMs: this.options.timeoutMs });
    this.reader = reader;
    report.chainId = reader.chainId;
    report.contract = reader.address;
    if (found && found.chainId !== reader.chainId) {
      throw new VerifierError(
        'CHAIN_ERROR',
        `the log's latest anchor (entry ${found.index}) is on chain ${found.chainId}, but the RPC endpoint is chain ${reader.chainId}`,
        { index: found.index },
      );
    }

    // The chain first, then the service: an honest service's checkpoint is then at least the latest anchor.
    report.blockNumber = await reader.blockNumber();
    const onChain = await reader.checkpoints(report.blockNumber);
    report.anchors.onChain = onChain.length;
    report.anchors.latest = onChain.at(-1) ?? null;
    if (onChain.length === 0) this.fail('NOT_ANCHORED', `no checkpoint is anchored on ${reader.address} (chain ${reader.chainId})`);
    await this.readPredecessors(reader, report.blockNumber);
    const head = await this.log.getCheckpoint();
    report.treeSize = head.treeSize;
    const checked: [OnChainCheckpoint[], string][] = [[onChain, 'on chain'], ...this.predecessors.map((p) => [p.checkpoints, `on predecessor ${p.check.contract}`] as [OnChainCheckpoint[], string])];
    for (const [checkpoints, where] of checked) {
      for (const checkpoint of checkpoints) {
        if (checkpoint.treeSize > head.treeSize) {
          this.fail(
            'INCONSISTENT_WITH_CHAIN',
            `checkpoint ${checkpoint.number} ${where} anchors ${checkpoint.treeSize} entries, but the service's log has only ${head.treeSize}`,
            { anchor: checkpoint.number },
          );
        }
      }
    }
    if (report.anchors.latest) await this.checkLatestConsistency(report.anchors.latest, head);

    const complete = await this.streamEntries(head.treeSize, new Set(checked.flatMap(([checkpoints]) => checkpoints.map((c) => c.treeSize))));
    if (complete) {
      this.compareRoots(head);
      report.anchors.checked = this.compareCheckpoints(onChain, 'on chain');
      for (const p of this.predecessors) p.check.checked = this.compareCheckpoints(p.checkpoints, `on predecessor ${p.check.contract}`);
      for (const failure of this.retirement.findings()) this.failures.add(failure);
    }
    if (found && !found.failure && complete && found.index < head.treeSize && !this.logged.some((a) => a.index === found.index && a.event.contract === address)) {
      this.fail('BAD_ENTRY', `the service answered entry ${found.index} differently when asked twice`, { index: found.index });
    }
    await this.checkLoggedAnchors(onChain);
  }

  /** The service's checkpoint must extend the latest on-chain one: a consistency proof, verified here. */
  private async checkLatestConsistency(latest: OnChainCheckpoint, head: ServerCheckpoint): Promise<void> {
    if (latest.treeSize > head.treeSize) return; // reported already
    const anchor = latest.number;
    let proof;
    try {
      proof = await this.log.getConsistencyProof(latest.treeSize, head.treeSize);
    } catch (err) {
      if (!(err instanceof VerifierError) || err.code === 'INVALID_ARGUMENT') throw err;
      this.failures.add({ ...err.toFailure(), anchor });
      this.report.anchors.latestConsistent = false;
      return;
    }
    try {
      verifyConsistency(latest.treeSize, head.treeSize, proof.proof.map((h) => fromHex(h)), fromHex(latest.rootHash), fromHex(head.rootHash));
      this.report.anchors.latestConsistent = true;
    } catch (err) {
      if (!(err instanceof MerkleError)) throw err;
      this.report.anchors.latestConsistent = false;
      const what = `the consistency proof from checkpoint ${anchor} on chain (size ${latest.treeSize}) to the service's checkpoint (size ${head.treeSize})`;
      if (err.code === 'ROOT_MISMATCH') {
        const theirs = proof.fromRoot === latest.rootHash ? '' : `; the service's own root at size ${latest.treeSize} is ${proof.fromRoot}, the chain's ${latest.rootHash}`;
        this.fail('INCONSISTENT_WITH_CHAIN', `${what} fails: ${err.message}${theirs}`, { anchor });
      } else {
        this.fail('BAD_PROOF', `${what} is malformed: ${err.message}`, { anchor });
      }
    }
  }

  /**
   * Downloads entries [0, size) page by page (the next page is requested while this one is hashed),
   * re-hashes each into a CompactRange and keeps the root at every size in `neededSizes`. Returns false
   * when an entry is missing or out of place: the roots after it would mean nothing.
   */
  private async streamEntries(size: number, neededSizes: Set<number>): Promise<boolean> {
    const range = CompactRange.empty();
    const fetchPage = (start: number): Promise<ServerEntry[]> => this.log.getEntries(start, Math.min(MAX_ENTRIES_PER_PAGE, size - start));
    let next: Promise<ServerEntry[]> | undefined = size > 0 ? fetchPage(0) : undefined;
    try {
      for (let start = 0; start < size; start += MAX_ENTRIES_PER_PAGE) {
        const page = await next!;
        const limit = Math.min(MAX_ENTRIES_PER_PAGE, size - start);
        next = start + MAX_ENTRIES_PER_PAGE < size ? fetchPage(start + MAX_ENTRIES_PER_PAGE) : undefined;
        let pending: Uint8Array[] = [];
        for (let k = 0; k < limit; k++) {
          const index = start + k;
          const entry = page[k];
          if (!entry || entry.index !== index) {
            const instead = entry ? `sent entry ${entry.index} in its place` : `sent ${page.length} entries from ${start}`;
            this.fail('BAD_ENTRY', `entry ${index} is missing: the service's checkpoint has ${size} entries, but it ${instead}`, { index });
            return false;
          }
          const rehashed = rehashEntry(entry);
          if (rehashed.failure) this.failures.add(rehashed.failure);
          if (rehashed.event?.type === 'ANCHORED') this.logged.push({ index, event: rehashed.event });
          if (rehashed.event) this.retirement.observe(index, rehashed.event);
          pending.push(rehashed.leafHash);
          if (neededSizes.has(index + 1)) {
            range.append(pending);
            pending = [];
            this.rootsAt.set(index + 1, range.root());
          }
        }
        range.append(pending);
        this.report.entries += limit;
        this.options.onProgress?.(this.report.entries, size);
      }
    } finally {
      next?.catch(() => undefined); // a page requested but no longer wanted
    }
    this.report.rootHash = toHex(range.root());
    return true;
  }

  /**
   * Follows the contract back through its predecessors: on each, the checkpoints up to the size its successor
   * vouched for are part of the history (checked like the contract's own), those beyond are disregarded and
   * listed, and the vouched checkpoint itself must be one it holds. Each link is flagged as a RECOVERY.
   */
  private async readPredecessors(reader: AnchorReader, blockNumber: number): Promise<void> {
    const links = await connectPredecessors(reader, { rpcUrl: this.options.rpcUrl, timeoutMs: this.options.timeoutMs, blockTag: blockNumber });
    for (const link of links) {
      const all = await link.reader.checkpoints(blockNumber);
      const check: PredecessorCheck = {
        contract: link.address,
        successor: link.successor,
        vouchedSize: link.vouchedSize,
        vouchedRoot: link.vouchedRoot,
        checked: 0,
        disregarded: all.filter((c) => c.treeSize > link.vouchedSize),
      };
      this.predecessors.push({ link, check, checkpoints: all.filter((c) => c.treeSize <= link.vouchedSize) });
      this.report.predecessors.push(check);
      if (!all.some((c) => c.treeSize === link.vouchedSize && c.rootHash === link.vouchedRoot)) {
        this.fail(
          'INCONSISTENT_WITH_CHAIN',
          `${link.successor} vouches for the checkpoint of size ${link.vouchedSize} (root ${link.vouchedRoot}) on its predecessor ${link.address}, which holds no such checkpoint`,
        );
      }
      const sizes = check.disregarded.map((c) => c.treeSize);
      this.report.warnings.push({
        code: 'RECOVERY',
        contract: link.address,
        successor: link.successor,
        vouchedSize: link.vouchedSize,
        disregardedSizes: sizes,
        message:
          `the history went through a recovery: AuditAnchor ${link.successor} succeeds ${link.address} from its checkpoint of size ` +
          `${link.vouchedSize} (root ${link.vouchedRoot}), which the operator vouched for; ` +
          (sizes.length === 0
            ? `${link.address} holds no anchor beyond it`
            : `${sizes.length} anchor${sizes.length === 1 ? '' : 's'} on ${link.address} beyond it ${sizes.length === 1 ? 'is' : 'are'} disregarded (size${sizes.length === 1 ? '' : 's'} ${sizes.join(', ')})`),
      });
    }
  }

  private compareRoots(head: ServerCheckpoint): void {
    const root = this.report.rootHash!;
    if (root !== head.rootHash) {
      this.fail('ROOT_MISMATCH', `the ${head.treeSize} entries hash to root ${root}, but the service's checkpoint says ${head.rootHash}`);
    }
  }

  /** Each checkpoint against the root recomputed at its size; returns how many were compared. */
  private compareCheckpoints(checkpoints: OnChainCheckpoint[], where: string): number {
    let compared = 0;
    for (const checkpoint of checkpoints) {
      const recomputed = this.rootsAt.get(checkpoint.treeSize);
      if (!recomputed) continue; // beyond the log: reported already
      compared++;
      if (toHex(recomputed) !== checkpoint.rootHash) {
        this.fail(
          'INCONSISTENT_WITH_CHAIN',
          `checkpoint ${checkpoint.number} ${where} has root ${checkpoint.rootHash} at size ${checkpoint.treeSize}, ` +
            `but the service's first ${checkpoint.treeSize} entries hash to ${toHex(recomputed)}`,
          { anchor: checkpoint.number },
        );
      }
    }
    return compared;
  }

  /**
   * Each ANCHORED entry on this chain and on this contract or one of its predecessors: its checkpoint is on
   * that contract, and its transaction mined it.
   */
  private async checkLoggedAnchors(onChain: OnChainCheckpoint[]): Promise<void> {
    const contracts = new Map<string, { reader: AnchorReader; bySize: Map<number, OnChainCheckpoint> }>();
    contracts.set(this.reader!.address, { reader: this.reader!, bySize: new Map(onChain.map((c) => [c.treeSize, c])) });
    for (const { link, checkpoints, check } of this.predecessors) {
      contracts.set(link.address, { reader: link.reader, bySize: new Map([...checkpoints, ...check.disregarded].map((c) => [c.treeSize, c])) });
    }
    this.report.anchors.logged = this.logged.length;
    const here = this.logged.filter(({ event }) => event.chainId === this.reader!.chainId && contracts.has(event.contract));
    this.report.anchors.loggedElsewhere = this.logged.length - here.length;
    await mapLimit(here, 8, async ({ index, event }) => {
      const { reader, bySize } = contracts.get(event.contract)!;
      const what = `entry ${index} (ANCHORED size ${event.treeSize}, tx ${event.txHash})`;
      if (event.treeSize > index) {
        this.fail('BAD_ENTRY', `${what} claims an anchor of entries it precedes`, { index });
      }
      const checkpoint = bySize.get(event.treeSize) ?? (await reader.findCheckpointByTreeSize(event.treeSize));
      if (!checkpoint) {
        this.fail('NOT_ANCHORED', `${what}: no checkpoint of size ${event.treeSize} is on ${reader.address}`, { index });
      } else if (checkpoint.rootHash !== event.rootHash) {
        this.fail('NOT_ANCHORED', `${what} has root ${event.rootHash}, but checkpoint ${checkpoint.number} on chain has ${checkpoint.rootHash}`, {
          index,
          anchor: checkpoint.number,
        });
      }
      const anchor = checkpoint?.number;
      const tx = await reader.getAnchorTransaction(event.txHash);
      if (!tx) {
        this.fail('NOT_ANCHORED', `${what}: the transaction is not on chain ${reader.chainId}`, { index, anchor });
      } else if (!tx.succeeded) {
        this.fail('NOT_ANCHORED', `${what}: the transaction reverted`, { index, anchor });
      } else if (tx.blockNumber !== event.blockNumber) {
        this.fail('NOT_ANCHORED', `${what}: the transaction is in block ${tx.blockNumber}, the entry says ${event.blockNumber}`, { index, anchor });
      } else if (!tx.anchored.some((a) => a.treeSize === event.treeSize && a.rootHash === event.rootHash)) {
        this.fail('NOT_ANCHORED', `${what}: the transaction did not anchor size ${event.treeSize} with root ${event.rootHash}`, { index, anchor });
      }
      this.report.anchors.loggedChecked++;
    });
  }

  private fail(code: VerificationFailure['code'], message: string, where: { index?: number; anchor?: number } = {}): void {
    const failure: VerificationFailure = { code, message };
    if (where.index !== undefined) failure.index = where.index;
    if (where.anchor !== undefined) failure.anchor = where.anchor;
    this.failures.add(failure);
  }
}
