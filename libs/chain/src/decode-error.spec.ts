import { id, Interface, makeError } from 'ethers';
import { AUDIT_ANCHOR_ABI } from './anchor-client';
import { decodeChainError } from './decode-error';
import { ChainError } from './errors';

const iface = new Interface(AUDIT_ANCHOR_ABI);

/** The error ethers throws for a reverted eth_call / estimateGas, carrying the revert data. */
function callException(data: string): Error {
  return makeError('execution reverted', 'CALL_EXCEPTION', { action: 'call', data, reason: null, transaction: { to: null, data: '0x' }, invocation: null, revert: null });
}

describe('decodeChainError', () => {
  it('maps each AuditAnchor custom error to its code with named arguments (sizes as numbers, hashes as hex)', () => {
    const root = 'ab'.repeat(32);
    const cases: [string, unknown[], string, Record<string, unknown>][] = [
      ['AuditAnchorInconsistentRoot', [4, 8, '0x' + root], 'INCONSISTENT_ROOT', { oldSize: 4, newSize: 8, newRoot: root }],
      ['AuditAnchorStaleOldSize', [4, 8], 'STALE_OLD_SIZE', { oldSize: 4, storedSize: 8 }],
      ['AuditAnchorSizeNotIncreasing', [8, 8], 'SIZE_NOT_INCREASING', { oldSize: 8, newSize: 8 }],
      ['AuditAnchorTreeSizeTooLarge', [2 ** 40, 2 ** 40 - 1], 'TREE_SIZE_TOO_LARGE', { newSize: 2 ** 40, maxSize: 2 ** 40 - 1 }],
      ['AuditAnchorUnexpectedProof', [2], 'UNEXPECTED_PROOF', { proofLength: 2 }],
      ['AuditAnchorUnknownCheckpoint', [3, 3], 'UNKNOWN_CHECKPOINT', { number: 3, count: 3 }],
      ['AuditAnchorNoCheckpoint', [], 'UNKNOWN_CHECKPOINT', {}],
      ['AuditAnchorUnknownTreeSize', [12], 'UNKNOWN_TREE_SIZE', { treeSize: 12 }],
      ['EnforcedPause', [], 'PAUSED', {}],
    ];
    for (const [name, args, code, named] of cases) {
      const error = decodeChainError(callException(iface.encodeErrorResult(name, args)), iface, 'anchor');
      expect({ name, code: error.code, errorName: error.errorName, args: error.args }).toEqual({ name, code, errorName: name, args: named });
    }
  });

  it('tells a missing anchorer role from a missing admin role', () => {
    const account = '0x' + '11'.repeat(20);
    const anchorer = decodeChainError(callException(iface.encodeErrorResult('AccessControlUnauthorizedAccount', [account, id('ANCHORER_ROLE')])), iface, 'anchor');
    const admin = decodeChainError(callException(iface.encodeErrorResult('AccessControlUnauthorizedAccount', [account, '0x' + '00'.repeat(32)])), iface, 'pause');
    expect([anchorer.code, admin.code]).toEqual(['NOT_ANCHORER', 'NOT_AUTHORIZED']);
  });

  it('calls unknown revert data REVERTED and a refused connection RPC_UNAVAILABLE', () => {
    expect(decodeChainError(callException('0xdeadbeef00'), iface, 'x').code).toBe('REVERTED');
    const refused = Object.assign(new TypeError('fetch failed'), { cause: new Error('connect ECONNREFUSED 127.0.0.1:8545') });
    expect(decodeChainError(refused, iface, 'x').code).toBe('RPC_UNAVAILABLE');
    expect(decodeChainError(makeError('nonce has already been used', 'NONCE_EXPIRED', { transaction: {} }), iface, 'x').code).toBe('NONCE_CONFLICT');
  });

  it('passes a ChainError through unchanged', () => {
    const original = new ChainError('TIMEOUT', 'slow');
    expect(decodeChainError(original, iface, 'x')).toBe(original);
  });
});
