import type { Anchored } from '@lethe/events';
import { VerifierError, type VerificationFailure } from './errors';
import type { LogClient } from './log-client';
import { rehashEntry } from './rehash-entry';
import { AnchorReader, type Predecessor } from './anchor-reader';

/** Where the log says its roots are anchored: from its latest ANCHORED entry. */
export interface AnchoredContract {
  chainId: string;
  /** Lowercase 0x address. */
  contract: string;
  /** Index of the ANCHORED entry it was read from. */
  index: number;
  /**
   * Set when that entry is missing or is no valid ANCHORED event (BAD_ENTRY): chainId and contract are
   * then the service's anchor record's, so that the rest of an audit can still run against the chain.
   */
  failure?: VerificationFailure;
}

/**
 * Finds the contract of the latest anchor from the log itself: the service says which entry records its
 * latest anchor (GET /v1/anchors/latest, ledgerIndex), and that entry is read and re-hashed like any other
 * (verifyLog later checks it is part of the log it verifies). Throws NOT_ANCHORED when the service reports
 * no anchor, SERVER_ERROR when the service fails.
 */
export async function findAnchoredContract(log: LogClient): Promise<AnchoredContract> {
  const latest = await log.getLatestAnchor();
  if (!latest) throw new VerifierError('NOT_ANCHORED', 'the service reports no anchor (GET /v1/anchors/latest is 404) and no contract was given');
  const index = latest.ledgerIndex;
  const fallback = (message: string): AnchoredContract => ({
    chainId: latest.chainId,
    contract: latest.contract,
    index,
    failure: { code: 'BAD_ENTRY', message, index },
  });
  const [entry] = await log.getEntries(index, 1);
  if (!entry || entry.index !== index) return fallback(`entry ${index}, which the service says records its latest anchor, is missing`);
  const checked = rehashEntry(entry);
  if (checked.failure) return fallback(checked.failure.message);
  if (checked.event?.type !== 'ANCHORED') {
    return fallback(`entry ${index}, which the service says records its latest anchor, is ${checked.event?.type}, not ANCHORED`);
  }
  const event: Anchored = checked.event;
  return { chainId: event.chainId, contract: event.contract, index };
}

/**
 * Connects to the AuditAnchor given, or else to the one the log's latest ANCHORED entry names (a failure
 * to find it is added to `report.failures`), and records which chain and contract in the report.
 */
export async function connectAnchorReader(
  log: LogClient,
  options: { rpcUrl: string; contract?: string; timeoutMs?: number },
  report: { failures: VerificationFailure[]; chainId: string | null; contract: string | null },
): Promise<AnchorReader> {
  let contract = options.contract;
  if (contract === undefined) {
    const found = await findAnchoredContract(log);
    if (found.failure) report.failures.push(found.failure);
    contract = found.contract;
  }
  const reader = await AnchorReader.connect(options.rpcUrl, contract, { timeoutMs: options.timeoutMs });
  report.chainId = reader.chainId;
  report.contract = reader.address;
  return reader;
}

/** Most predecessors followed back from one contract (each one a recovery after a key compromise). */
export const MAX_PREDECESSORS = 16;

/** A compromised contract, connected, and what its successor vouched for on it. */
export interface PredecessorLink extends Predecessor {
  /** Connected to the predecessor (close it when done). */
  reader: AnchorReader;
  /** Lowercase 0x address of the contract that succeeds it. */
  successor: string;
}

/**
 * Follows the contract `reader` reads back through its predecessors (successors deployed after a key
 * compromise), newest first, each connected through the same endpoint. Throws VerifierError CHAIN_ERROR for
 * a chain of more than MAX_PREDECESSORS or one that loops, and what AnchorReader.connect throws for a
 * predecessor that is no AuditAnchor; the readers connected so far are closed then.
 */
export async function connectPredecessors(
  reader: AnchorReader,
  options: { rpcUrl: string; timeoutMs?: number; blockTag?: number },
): Promise<PredecessorLink[]> {
  const links: PredecessorLink[] = [];
  const seen = new Set([reader.address]);
  let current = reader;
  try {
    for (;;) {
      const predecessor = await current.predecessor(options.blockTag);
      if (!predecessor) return links;
      if (seen.has(predecessor.address) || links.length === MAX_PREDECESSORS) {
        throw new VerifierError(
          'CHAIN_ERROR',
          `${current.address} names ${predecessor.address} as its predecessor, ` +
            (seen.has(predecessor.address) ? 'which is already in its chain of predecessors (a loop)' : `beyond ${MAX_PREDECESSORS} predecessors`),
        );
      }
      seen.add(predecessor.address);
      const predecessorReader = await AnchorReader.connect(options.rpcUrl, predecessor.address, { timeoutMs: options.timeoutMs });
      links.push({ ...predecessor, reader: predecessorReader, successor: current.address });
      current = predecessorReader;
    }
  } catch (err) {
    for (const link of links) link.reader.close();
    throw err;
  }
}
