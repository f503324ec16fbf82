import type { Anchored } from '@lethe/events';
import { VerifierError, type VerificationFailure } from './errors';
import type { LogClient } from './log-client';
import { rehashEntry } from './rehash-entry';
import { AnchorReader } from './anchor-reader';

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
