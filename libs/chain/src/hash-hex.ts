import { ChainError } from './errors';

/** A 32-byte hash as bytes or as hex (64 digits, either case, optional 0x), as libs/merkle's toHex writes it. */
export type HashInput = Uint8Array | string;

/** Converts a hash to the 0x-prefixed lowercase form the contract ABI takes; `what` names it in errors. */
export function toBytes32(hash: HashInput, what: string): string {
  if (hash instanceof Uint8Array) {
    if (hash.length !== 32) throw new ChainError('INVALID_ARGUMENT', `${what} has ${hash.length} bytes, want 32`);
    return '0x' + Buffer.from(hash).toString('hex');
  }
  const digits = typeof hash === 'string' && hash.startsWith('0x') ? hash.slice(2) : hash;
  if (typeof digits !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digits)) {
    throw new ChainError('INVALID_ARGUMENT', `${what} is not 32 bytes of hex: ${JSON.stringify(String(hash).slice(0, 80))}`);
  }
  return '0x' + digits.toLowerCase();
}

/** Converts a bytes32 from the contract to lowercase hex without 0x (the form used at Lethe's boundaries). */
export function fromBytes32(value: string): string {
  return value.slice(2).toLowerCase();
}

/** Checks that a size or index is a safe integer >= 0 and returns it as a bigint for the ABI. */
export function toUint64(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ChainError('INVALID_ARGUMENT', `${what} ${value} is not a safe integer >= 0`);
  }
  return BigInt(value);
}
