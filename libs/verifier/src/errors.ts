import { redactCause, redactText } from '@lethe/redact';

/**
 * What an audit found wrong, for callers to branch on (never on the message text). A report lists
 * failures with these codes; functions that check one thing throw a VerifierError with one of them.
 */
export type VerificationFailureCode =
  /** The root recomputed from the entries the server sent is not the server's own checkpoint root. */
  | 'ROOT_MISMATCH'
  /** Nothing is anchored, or an ANCHORED entry claims an anchor the chain does not hold (no checkpoint of
   *  that size or root, no such transaction, another block). */
  | 'NOT_ANCHORED'
  /** The log the server shows does not extend what the chain anchored: the recomputed root at an anchored
   *  size differs from the on-chain root, the log is shorter than an anchor, or the consistency proof from
   *  the latest on-chain checkpoint to the server's checkpoint fails. */
  | 'INCONSISTENT_WITH_CHAIN'
  /** A proof from the server is malformed (wrong number of hashes) or does not lead to the root it must. */
  | 'BAD_PROOF'
  /** An entry does not re-hash to its leaf hash, is not canonical JSON, is not a valid event, or is
   *  missing or out of place in the sequence. */
  | 'BAD_ENTRY'
  /** The service is unreachable, too slow, answers with an error status or with malformed data. */
  | 'SERVER_ERROR'
  /** The JSON-RPC endpoint is unreachable, too slow, or answers with an error; or is another chain. */
  | 'CHAIN_ERROR'
  /** No AuditAnchor contract at the address (no code, or code that does not answer as AuditAnchor). */
  | 'NOT_AUDIT_ANCHOR'
  /** A model version that learned samples of a forget request is not retired by a VERSION_RETIRED entry
   *  after the request (it may still be served): the log or a receipt shows it learned them, and that they
   *  were forgotten elsewhere or the request completed. */
  | 'NOT_RETIRED';

export type VerifierErrorCode =
  | VerificationFailureCode
  /** The caller's mistake (a malformed argument, data that cannot be read); never a finding. */
  | 'INVALID_ARGUMENT'
  /** The replay audit cannot retrain the version: the service lists no such version, its configuration is
   *  not one the engine takes or disagrees with the ledger's BATCH_LEARNED entries, or the engine refused. */
  | 'REPLAY_FAILED';

/**
 * What an audit flags without failing: the history verified, but went through something an auditor must
 * know of. RECOVERY: the contract succeeds one whose anchorer key was compromised; the history carries on
 * from the checkpoint on it the operator vouched for, and that contract's later anchors are disregarded.
 */
export type VerificationWarningCode = 'RECOVERY';

/** A RECOVERY flag: which contract was left, for which successor, from which checkpoint, and what was disregarded. */
export interface VerificationWarning {
  code: VerificationWarningCode;
  message: string;
  /** Lowercase 0x address of the compromised contract. */
  contract: string;
  /** Lowercase 0x address of the contract that succeeds it. */
  successor: string;
  /** Tree size of the checkpoint on `contract` the successor vouches for. */
  vouchedSize: number;
  /** Tree sizes of the checkpoints on `contract` beyond the vouched one, disregarded. */
  disregardedSizes: number[];
}

/** One problem in a report; `index` names the log entry and `anchor` the on-chain checkpoint number. */
export interface VerificationFailure {
  code: VerificationFailureCode;
  message: string;
  index?: number;
  anchor?: number;
}

export interface VerifierErrorDetails {
  index?: number;
  anchor?: number;
  /** The URL of the request concerned (service or JSON-RPC). */
  url?: string;
  /** HTTP status of the service's answer, when it answered. */
  status?: number;
  cause?: unknown;
}

/** Codes whose messages speak of the JSON-RPC endpoint: they go through the one redaction (redactText). */
const CHAIN_CODES: ReadonlySet<VerifierErrorCode> = new Set(['CHAIN_ERROR', 'NOT_AUDIT_ANCHOR']);

/**
 * An audit's failure. The messages of CHAIN_ERROR and NOT_AUDIT_ANCHOR go through redactText (no RPC URL's
 * path, query or credentials, no secret part of a remembered RPC URL); a `cause` is kept only as a redacted
 * summary of the original (redactCause), so that printing the error whole shows no key either.
 */
export class VerifierError extends Error {
  override readonly name = 'VerifierError';
  readonly index?: number;
  readonly anchor?: number;
  readonly url?: string;
  readonly status?: number;

  constructor(
    readonly code: VerifierErrorCode,
    message: string,
    details: VerifierErrorDetails = {},
  ) {
    super(CHAIN_CODES.has(code) ? redactText(message) : message, details.cause === undefined ? undefined : { cause: redactCause(details.cause) });
    this.index = details.index;
    this.anchor = details.anchor;
    this.url = details.url !== undefined && CHAIN_CODES.has(code) ? redactText(details.url) : details.url;
    this.status = details.status;
  }

  /** The error as a report line (INVALID_ARGUMENT is a caller's mistake, never a finding; REPLAY_FAILED ends a replay). */
  toFailure(): VerificationFailure {
    if (this.code === 'INVALID_ARGUMENT' || this.code === 'REPLAY_FAILED') throw this;
    const failure: VerificationFailure = { code: this.code, message: this.message };
    if (this.index !== undefined) failure.index = this.index;
    if (this.anchor !== undefined) failure.anchor = this.anchor;
    return failure;
  }
}
