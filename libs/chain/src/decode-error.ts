import { Interface, id, isError } from 'ethers';
import { chainErrorText } from '@lethe/redact';
import { ChainError, type ChainErrorCode } from './errors';

const CODE_BY_ERROR_NAME: Record<string, ChainErrorCode> = {
  AuditAnchorInconsistentRoot: 'INCONSISTENT_ROOT',
  AuditAnchorStaleOldSize: 'STALE_OLD_SIZE',
  AuditAnchorSizeNotIncreasing: 'SIZE_NOT_INCREASING',
  AuditAnchorTreeSizeTooLarge: 'TREE_SIZE_TOO_LARGE',
  AuditAnchorUnexpectedProof: 'UNEXPECTED_PROOF',
  AuditAnchorUnknownCheckpoint: 'UNKNOWN_CHECKPOINT',
  AuditAnchorNoCheckpoint: 'UNKNOWN_CHECKPOINT',
  AuditAnchorUnknownTreeSize: 'UNKNOWN_TREE_SIZE',
  AuditAnchorJumpTooLarge: 'JUMP_TOO_LARGE',
  AuditAnchorMaxJumpOutOfRange: 'INVALID_ARGUMENT',
  AuditAnchorUnknownVouchedCheckpoint: 'INVALID_ARGUMENT',
  AuditAnchorVouchedWithoutPredecessor: 'INVALID_ARGUMENT',
  AccessControlInvalidDefaultAdmin: 'INVALID_ARGUMENT',
  AccessControlEnforcedDefaultAdminRules: 'NOT_AUTHORIZED',
  AccessControlEnforcedDefaultAdminDelay: 'NOT_AUTHORIZED',
  EnforcedPause: 'PAUSED',
};

const ANCHORER_ROLE = id('ANCHORER_ROLE');

/**
 * Turns whatever ethers threw into a ChainError: custom errors of the contract are decoded from the revert
 * data into their code with arguments; transport failures become RPC_UNAVAILABLE. What the message tells of
 * the original is chainErrorText's (ethers' short message, redacted), never the URL or the bodies.
 */
export function decodeChainError(err: unknown, iface: Interface, what: string, txHash?: string): ChainError {
  if (err instanceof ChainError) return err;
  const data = findRevertData(err);
  if (data !== undefined && data.length >= 10) {
    const parsed = safeParseError(iface, data);
    if (parsed) {
      const args: Record<string, string | number | boolean> = {};
      parsed.fragment.inputs.forEach((input, i) => (args[input.name || String(i)] = toPlain(parsed.args[i])));
      let code: ChainErrorCode = CODE_BY_ERROR_NAME[parsed.name] ?? 'REVERTED';
      if (parsed.name === 'AccessControlUnauthorizedAccount') {
        code = String(parsed.args[1]).toLowerCase() === ANCHORER_ROLE ? 'NOT_ANCHORER' : 'NOT_AUTHORIZED';
      }
      return new ChainError(code, `${what} reverted with ${parsed.name}(${Object.values(args).join(', ')})`, {
        errorName: parsed.name,
        args,
        txHash,
        cause: err,
      });
    }
    return new ChainError('REVERTED', `${what} reverted with unknown data ${data.slice(0, 74)}`, { txHash, cause: err });
  }
  if (isError(err, 'CALL_EXCEPTION')) {
    return new ChainError('REVERTED', `${what} reverted: ${err.shortMessage}`, { txHash, cause: err });
  }
  if (isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED') || /nonce too low|nonce has already been used/i.test(messageOf(err))) {
    return new ChainError('NONCE_CONFLICT', `${what}: ${chainErrorText(err)}`, { txHash, cause: err });
  }
  if (isError(err, 'INSUFFICIENT_FUNDS')) {
    return new ChainError('INSUFFICIENT_FUNDS', `${what}: ${chainErrorText(err)}`, { txHash, cause: err });
  }
  if (isError(err, 'TIMEOUT')) return new ChainError('TIMEOUT', `${what}: ${chainErrorText(err)}`, { txHash, cause: err });
  if (isError(err, 'NETWORK_ERROR') || isError(err, 'SERVER_ERROR') || /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up/i.test(messageOf(err))) {
    return new ChainError('RPC_UNAVAILABLE', `${what}: JSON-RPC unavailable (${chainErrorText(err)})`, { txHash, cause: err });
  }
  return new ChainError('REVERTED', `${what} failed: ${chainErrorText(err)}`, { txHash, cause: err });
}

function safeParseError(iface: Interface, data: string): ReturnType<Interface['parseError']> {
  try {
    return iface.parseError(data);
  } catch {
    return null;
  }
}

/** ethers puts revert data on err.data, or deeper for some providers. */
function findRevertData(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): string | undefined => {
    if (depth > 5 || value === null || typeof value !== 'object' || seen.has(value)) return undefined;
    seen.add(value);
    const data = (value as { data?: unknown }).data;
    if (typeof data === 'string' && /^0x[0-9a-fA-F]*$/.test(data) && data.length >= 10) return data;
    for (const key of ['error', 'info', 'cause', 'data']) {
      const found = visit((value as Record<string, unknown>)[key], depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  return visit(err, 0);
}

function toPlain(value: unknown): string | number | boolean {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'string') return /^0x[0-9a-fA-F]{64}$/.test(value) ? value.slice(2).toLowerCase() : value.toLowerCase();
  if (typeof value === 'boolean' || typeof value === 'number') return value;
  return String(value);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
