// The Verify button's checks: each a clear pass or fail, each failure naming its code, entry and anchor.
// Built from libs/verifier's reports; nothing here decides on its own that something verified.
import type { VerificationFailure, VerifyLogReport, VerifyModelReport } from '@lethe/verifier';
import type { LogEntry } from './derive';

export type CheckStatus = 'pass' | 'fail' | 'not run';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  /** What was checked (counts, sizes). */
  detail: string;
  failures: VerificationFailure[];
}

const isConsistencyFailure = (f: VerificationFailure) =>
  f.code === 'BAD_PROOF' || (f.code === 'INCONSISTENT_WITH_CHAIN' && /consistency proof/.test(f.message));

/**
 * The checks of one run. `log` is verifyLog's report; `models` verifyModel's for the latest version of each
 * model; `displayed` the entries the portal showed before the run (compared with those verified).
 */
export function buildChecks(
  log: VerifyLogReport,
  models: VerifyModelReport[],
  displayed: LogEntry[] | null,
  verified: Map<number, string>,
): Check[] {
  return [
    ...buildLogChecks(log),
    ...buildAnchorChecks(log),
    buildRetiredCheck(log),
    buildModelsCheck(models, log),
    buildDisplayedCheck(displayed, verified),
  ];
}

/** A check that found `failures`, else passed if it `ran`. */
function check(id: string, title: string, failures: VerificationFailure[], ran: boolean, detail: string): Check {
  return { id, title, status: failures.length > 0 ? 'fail' : ran ? 'pass' : 'not run', detail, failures };
}

const failuresOf = (log: VerifyLogReport, pick: (f: VerificationFailure) => boolean) => log.failures.filter(pick);
const hasReachedChain = (log: VerifyLogReport) => log.chainId !== null;
const hasReadEntries = (log: VerifyLogReport) => log.entries > 0 || log.treeSize === 0;

/** The service, the chain, the entries and the root: what verifyLog read and recomputed. */
function buildLogChecks(log: VerifyLogReport): Check[] {
  const reachedChain = hasReachedChain(log);
  return [
    check(
      'service',
      'The service answers with well-formed data',
      failuresOf(log, (f) => f.code === 'SERVER_ERROR'),
      log.treeSize !== null,
      `checkpoint of ${log.treeSize ?? '?'} entries`,
    ),
    check(
      'chain',
      'The chain answers and the contract is AuditAnchor',
      failuresOf(log, (f) => f.code === 'CHAIN_ERROR' || f.code === 'NOT_AUDIT_ANCHOR' || (f.code === 'NOT_ANCHORED' && f.index === undefined)),
      reachedChain,
      reachedChain
        ? `chain ${log.chainId}, contract ${log.contract} (${log.contractSource === 'option' ? 'as given' : 'from the log'}), ${
            log.anchors.onChain
          } checkpoint(s) at block ${log.blockNumber}`
        : 'not reached',
    ),
    check(
      'entries',
      'Every entry re-hashes to its leaf hash and is a valid, canonical event',
      failuresOf(log, (f) => f.code === 'BAD_ENTRY'),
      hasReadEntries(log),
      `${log.entries} of ${log.treeSize ?? '?'} entries re-hashed`,
    ),
    check(
      'root',
      "The entries hash to the service's checkpoint root",
      failuresOf(log, (f) => f.code === 'ROOT_MISMATCH'),
      log.rootHash !== null,
      log.rootHash ? `root ${log.rootHash}` : 'root not recomputed',
    ),
  ];
}

/** The on-chain checkpoints: their roots, the consistency proof to the latest, the ANCHORED entries' transactions. */
function buildAnchorChecks(log: VerifyLogReport): Check[] {
  const reachedChain = hasReachedChain(log);
  return [
    check(
      'anchored-roots',
      'Every on-chain checkpoint is the root of the log at its size',
      failuresOf(log, (f) => f.code === 'INCONSISTENT_WITH_CHAIN' && !isConsistencyFailure(f)),
      log.anchors.checked > 0 || (reachedChain && log.anchors.onChain === 0 && log.rootHash !== null),
      `${log.anchors.checked} of ${log.anchors.onChain} checkpoint(s) compared`,
    ),
    check(
      'consistency',
      "The service's checkpoint extends the latest on-chain checkpoint (consistency proof)",
      failuresOf(log, isConsistencyFailure),
      log.anchors.latestConsistent === true,
      log.anchors.latest
        ? `from size ${log.anchors.latest.treeSize} (checkpoint ${log.anchors.latest.number}) to ${log.treeSize}`
        : 'no checkpoint on chain',
    ),
    check(
      'anchor-transactions',
      'Every ANCHORED entry names a transaction that anchored that root',
      failuresOf(log, (f) => f.code === 'NOT_ANCHORED' && f.index !== undefined),
      log.anchors.loggedChecked > 0 || (hasReadEntries(log) && log.anchors.logged === 0 && reachedChain),
      `${log.anchors.loggedChecked} of ${log.anchors.logged} ANCHORED entries checked${
        log.anchors.loggedElsewhere ? `, ${log.anchors.loggedElsewhere} on another chain or contract` : ''
      }`,
    ),
  ];
}

/** What verifyLog found about retirement from the entries alone: no version an unlearning left behind still live. */
function buildRetiredCheck(log: VerifyLogReport): Check {
  return check(
    'retired',
    'Every model version that learned what an unlearning forgot is retired (VERSION_RETIRED)',
    failuresOf(log, (f) => f.code === 'NOT_RETIRED'),
    hasReadEntries(log) && log.rootHash !== null,
    `${log.entries} entries checked for versions left behind by an unlearning`,
  );
}

/** verifyModel of each model's latest version. */
function buildModelsCheck(models: VerifyModelReport[], log: VerifyLogReport): Check {
  const versions = models.flatMap((m) => m.models);
  return check(
    'models',
    'Every model version is proven on chain, with its batches and forget requests in the log',
    models.flatMap((m) => m.failures),
    models.length > 0 ? models.every((m) => m.found) : hasReadEntries(log),
    models.length
      ? `${models.length} model(s), latest version each${
          versions.length ? `: ${versions.map((v) => `${v.modelId} v${v.modelVersion}`).join(', ')}` : ''
        }`
      : 'no model published',
  );
}

/** The entries shown before the run against those verified: a service that answers twice differently is caught. */
function buildDisplayedCheck(displayed: LogEntry[] | null, verified: Map<number, string>): Check {
  const changed: VerificationFailure[] = [];
  for (const entry of displayed ?? []) {
    const leaf = verified.get(entry.index);
    if (leaf !== undefined && leaf !== entry.leafHash) {
      changed.push({
        code: 'BAD_ENTRY',
        index: entry.index,
        message: `the service answered entry ${entry.index} differently when asked again: it showed ${entry.leafHash}, then verified ${leaf}`,
      });
    }
  }
  return check(
    'displayed',
    'The entries shown are the entries verified',
    changed,
    displayed !== null && verified.size > 0,
    `${displayed?.length ?? 0} entries shown, ${verified.size} verified`,
  );
}

/** "BAD_ENTRY at entry 3, anchor #1" */
export function describeWhere(failure: VerificationFailure): string {
  const parts = [];
  if (failure.index !== undefined) parts.push(`entry ${failure.index}`);
  if (failure.anchor !== undefined) parts.push(`anchor #${failure.anchor}`);
  return parts.join(', ');
}
