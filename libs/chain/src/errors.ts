import { redactCause, redactText } from '@lethe/redact';

/** What went wrong talking to the chain, for callers to branch on (never on the message text). */
export type ChainErrorCode =
  /** The consistency proof does not show that the new root extends the last anchored one (AuditAnchorInconsistentRoot). */
  | 'INCONSISTENT_ROOT'
  /** oldSize is not the anchored tree size: another anchor landed first (AuditAnchorStaleOldSize). */
  | 'STALE_OLD_SIZE'
  /** newSize is not larger than the anchored tree size (AuditAnchorSizeNotIncreasing). */
  | 'SIZE_NOT_INCREASING'
  /** newSize exceeds the contract's MAX_TREE_SIZE (AuditAnchorTreeSizeTooLarge). */
  | 'TREE_SIZE_TOO_LARGE'
  /** newSize - oldSize exceeds the contract's maxAnchorJump (AuditAnchorJumpTooLarge): anchor in several steps. */
  | 'JUMP_TOO_LARGE'
  /** The first anchor (from size 0) was sent with a proof (AuditAnchorUnexpectedProof). */
  | 'UNEXPECTED_PROOF'
  /** No checkpoint has that number, or none exists yet (AuditAnchorUnknownCheckpoint, AuditAnchorNoCheckpoint). */
  | 'UNKNOWN_CHECKPOINT'
  /** No anchored checkpoint has that tree size (AuditAnchorUnknownTreeSize). */
  | 'UNKNOWN_TREE_SIZE'
  /** The sender lacks ANCHORER_ROLE. */
  | 'NOT_ANCHORER'
  /** The sender lacks another role the call needs (e.g. DEFAULT_ADMIN_ROLE for pause), or the admin rules
   *  refuse the call (DEFAULT_ADMIN_ROLE granted directly, an admin transfer accepted before its delay). */
  | 'NOT_AUTHORIZED'
  /** The contract is paused. */
  | 'PAUSED'
  /** The call reverted for a reason this client does not know. */
  | 'REVERTED'
  /** The JSON-RPC endpoint does not answer. */
  | 'RPC_UNAVAILABLE'
  /** No AuditAnchor contract lives at the address. */
  | 'NOT_AUDIT_ANCHOR'
  /** The nonce was already used or the replacement was underpriced. */
  | 'NONCE_CONFLICT'
  /** The sender cannot pay for gas. */
  | 'INSUFFICIENT_FUNDS'
  /** The node refused an eth_getLogs call: most often a block range or result count beyond its limit. */
  | 'LOGS_REFUSED'
  /** A wait (for a receipt or the node to start) ran out of time. */
  | 'TIMEOUT'
  /** An argument is malformed (a size that is not a safe integer, a hash that is not 32 bytes, ...). */
  | 'INVALID_ARGUMENT'
  /** The port asked for the local Hardhat node is taken. */
  | 'PORT_IN_USE'
  /** The local Hardhat node exited or failed to start. */
  | 'NODE_START_FAILED'
  /** The contract could not be compiled or its artifact read. */
  | 'ARTIFACT_UNAVAILABLE'
  /** No key: neither ANCHORER_PRIVATE_KEY nor a readable keystore with the right password. */
  | 'SIGNER_UNAVAILABLE';

export interface ChainErrorDetails {
  /** Name of the decoded custom error, e.g. `AuditAnchorStaleOldSize`. */
  errorName?: string;
  /** Arguments of the decoded custom error by name; sizes as numbers, hashes as lowercase hex. */
  args?: Record<string, string | number | boolean>;
  /** Hash of the transaction concerned, if one was sent. */
  txHash?: string;
  cause?: unknown;
}

/**
 * A chain error. Its message goes through redactText (no RPC URL's path, query or credentials, no secret
 * part of a remembered RPC URL), and its `cause` is only a redacted summary of the original (redactCause):
 * whatever prints one, whole or in part, shows no key.
 */
export class ChainError extends Error {
  override readonly name = 'ChainError';
  readonly errorName?: string;
  readonly args?: Record<string, string | number | boolean>;
  readonly txHash?: string;

  constructor(
    readonly code: ChainErrorCode,
    message: string,
    details: ChainErrorDetails = {},
  ) {
    super(redactText(message), details.cause === undefined ? undefined : { cause: details.cause instanceof ChainError ? details.cause : redactCause(details.cause) });
    this.errorName = details.errorName;
    this.args = details.args;
    this.txHash = details.txHash;
  }
}
