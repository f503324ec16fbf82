import { Contract, Interface, ZeroAddress, id, type ContractRunner, type Log, type LogDescription, type Provider, type TransactionReceipt } from 'ethers';
import { blockRanges, type BlockRange } from './block-ranges';
import { decodeChainError } from './decode-error';
import { ChainError } from './errors';
import { fromBytes32, toBytes32, toUint64, type HashInput } from './hash-hex';

/** ABI of AuditAnchor as this client uses it (kept beside the client so reading it needs no compile). */
export const AUDIT_ANCHOR_ABI = [
  'function ANCHORER_ROLE() view returns (bytes32)',
  'function DEFAULT_ADMIN_ROLE() view returns (bytes32)',
  'function MAX_TREE_SIZE() view returns (uint64)',
  'function maxAnchorJump() view returns (uint64)',
  'function setMaxAnchorJump(uint64 newMaxJump)',
  'function predecessor() view returns (address predecessor, uint64 vouchedSize, bytes32 vouchedRoot)',
  'function defaultAdmin() view returns (address)',
  'function defaultAdminDelay() view returns (uint48)',
  'function pendingDefaultAdmin() view returns (address newAdmin, uint48 schedule)',
  'function beginDefaultAdminTransfer(address newAdmin)',
  'function acceptDefaultAdminTransfer()',
  'function anchor(uint64 oldSize, uint64 newSize, bytes32 newRoot, bytes32[] consistencyProof)',
  'function pause()',
  'function unpause()',
  'function paused() view returns (bool)',
  'function grantRole(bytes32 role, address account)',
  'function revokeRole(bytes32 role, address account)',
  'function hasRole(bytes32 role, address account) view returns (bool)',
  'function checkpointCount() view returns (uint256)',
  'function latestCheckpoint() view returns (tuple(uint64 treeSize, bytes32 rootHash, uint64 timestamp))',
  'function checkpoint(uint256 number) view returns (tuple(uint64 treeSize, bytes32 rootHash, uint64 timestamp))',
  'function checkpointNumberOf(uint64 treeSize) view returns (bool found, uint256 number)',
  'function verifyInclusion(bytes32 leafHash, uint64 index, uint64 treeSize, bytes32[] proof) view returns (bool)',
  'function verifyConsistency(uint64 size1, uint64 size2, bytes32 root1, bytes32 root2, bytes32[] proof) view returns (bool)',
  'function supportsInterface(bytes4 interfaceId) view returns (bool)',
  'event CheckpointAnchored(uint256 indexed number, uint64 indexed treeSize, bytes32 indexed rootHash, uint64 oldSize)',
  'event MaxAnchorJumpChanged(uint64 indexed oldMaxJump, uint64 indexed newMaxJump)',
  'event PredecessorVouched(address indexed predecessor, uint64 indexed treeSize, bytes32 indexed rootHash)',
  'event Paused(address account)',
  'event Unpaused(address account)',
  'error AuditAnchorStaleOldSize(uint64 oldSize, uint64 storedSize)',
  'error AuditAnchorSizeNotIncreasing(uint64 oldSize, uint64 newSize)',
  'error AuditAnchorTreeSizeTooLarge(uint64 newSize, uint64 maxSize)',
  'error AuditAnchorUnexpectedProof(uint256 proofLength)',
  'error AuditAnchorInconsistentRoot(uint64 oldSize, uint64 newSize, bytes32 newRoot)',
  'error AuditAnchorUnknownCheckpoint(uint256 number, uint256 count)',
  'error AuditAnchorNoCheckpoint()',
  'error AuditAnchorUnknownTreeSize(uint64 treeSize)',
  'error AuditAnchorJumpTooLarge(uint64 oldSize, uint64 newSize, uint64 maxJump)',
  'error AuditAnchorMaxJumpOutOfRange(uint64 maxJump, uint64 maxSize)',
  'error AuditAnchorUnknownVouchedCheckpoint(address predecessor, uint64 treeSize, bytes32 rootHash)',
  'error AuditAnchorVouchedWithoutPredecessor(uint64 treeSize, bytes32 rootHash)',
  'error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)',
  'error AccessControlBadConfirmation()',
  'error AccessControlInvalidDefaultAdmin(address defaultAdmin)',
  'error AccessControlEnforcedDefaultAdminRules()',
  'error AccessControlEnforcedDefaultAdminDelay(uint48 schedule)',
  'error EnforcedPause()',
  'error ExpectedPause()',
] as const;

const AUDIT_ANCHOR_INTERFACE = new Interface(AUDIT_ANCHOR_ABI);

/** AuditAnchor's MAX_TREE_SIZE (2^40 - 1): the largest tree size, and the largest jump bound. */
export const MAX_TREE_SIZE = 2 ** 40 - 1;

/** What a successor AuditAnchor records of the contract it succeeds; hashes lowercase hex without 0x. */
export interface Predecessor {
  /** Lowercase 0x address of the compromised AuditAnchor. */
  address: string;
  /** The checkpoint on it the operator vouched for (the successor's checkpoint 0). */
  vouchedSize: number;
  vouchedRoot: string;
}

/** A checkpoint as anchored on-chain; hashes lowercase hex without 0x. */
export interface AnchoredCheckpoint {
  /** Checkpoint number, from 0. */
  number: number;
  treeSize: number;
  rootHash: string;
  /** Block timestamp (seconds since the epoch) of the anchoring block. */
  timestamp: number;
}

/** A CheckpointAnchored event as the chain holds it now; hashes lowercase hex without 0x, the transaction's with 0x. */
export interface CheckpointAnchoredEvent {
  number: number;
  treeSize: number;
  rootHash: string;
  oldSize: number;
  txHash: string;
  blockNumber: number;
}

export interface AnchorClientOptions {
  /**
   * Most blocks one eth_getLogs call may span: hosted JSON-RPC endpoints refuse wider ones (often beyond
   * 2,000 or 10,000 blocks). 10,000 unless given.
   */
  logRangeBlocks?: number;
  /** The block the contract was deployed in: event scans go no further back. 0 (genesis) unless given. */
  deploymentBlock?: number;
}

/** Fee fields of the next block (EIP-1559), null on a chain without them. */
export interface FeeData {
  maxFeePerGas: bigint | null;
  maxPriorityFeePerGas: bigint | null;
}

/** Transaction fields a caller may pin, e.g. the nonce when replacing a stuck anchor. */
export interface AnchorOverrides {
  nonce?: number;
  /** When given, the call is not simulated first, so a revert surfaces only in waitForAnchor. */
  gasLimit?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
}

/** A mined, successful anchor transaction. */
export interface AnchorReceipt {
  txHash: string;
  blockNumber: number;
  blockHash: string;
  gasUsed: bigint;
  /** Confirmations when the receipt was read (1 = in the latest block). */
  confirmations: number;
  checkpoint: Omit<AnchoredCheckpoint, 'timestamp'> & { oldSize: number };
}

/** Where a sent transaction is now. `missing` after having been mined means a reorg dropped it. */
export type TransactionState =
  | { status: 'missing' }
  | { status: 'pending' }
  | { status: 'mined'; succeeded: boolean; blockNumber: number; blockHash: string; confirmations: number };

export interface WaitForAnchorOptions {
  /** Blocks to wait for, counting the one holding the transaction; 1 unless given. */
  confirmations?: number;
  /** 120 s unless given. */
  timeoutMs?: number;
}

/**
 * Client for an AuditAnchor contract. Reads work with a provider; writes need a signer as runner.
 * Every failure is a ChainError with a code (see errors.ts); custom errors are decoded with their arguments.
 */
export class AnchorClient {
  /** Most blocks one eth_getLogs call spans. */
  readonly logRangeBlocks: number;
  /** Where event scans start. */
  readonly deploymentBlock: number;
  /** predecessor() never changes (immutable in the contract): read once. */
  private predecessorRead?: Promise<Predecessor | null>;

  private constructor(
    private readonly contract: Contract,
    private readonly provider: Provider,
    readonly address: string,
    /** The signer's address when the runner is a signer (it sends anchors), else undefined. */
    readonly sender: string | undefined,
    options: AnchorClientOptions,
  ) {
    this.logRangeBlocks = options.logRangeBlocks ?? DEFAULT_LOG_RANGE_BLOCKS;
    this.deploymentBlock = options.deploymentBlock ?? 0;
  }

  /**
   * Connects to the AuditAnchor at `address`. Throws NOT_AUDIT_ANCHOR when the address holds no code or
   * code that does not answer as AuditAnchor, RPC_UNAVAILABLE when the node does not answer.
   */
  static async connect(address: string, runner: ContractRunner, options: AnchorClientOptions = {}): Promise<AnchorClient> {
    const provider = runner.provider ?? (runner as Provider);
    if (typeof (provider as Provider).getCode !== 'function') {
      throw new ChainError('INVALID_ARGUMENT', 'runner has no provider: connect the signer to a provider first');
    }
    if (options.logRangeBlocks !== undefined && (!Number.isSafeInteger(options.logRangeBlocks) || options.logRangeBlocks < 1))
      throw new ChainError('INVALID_ARGUMENT', `logRangeBlocks must be a positive integer, got ${options.logRangeBlocks}`);
    if (options.deploymentBlock !== undefined) toUint64(options.deploymentBlock, 'deploymentBlock');
    const contract = new Contract(address, AUDIT_ANCHOR_INTERFACE, runner);
    let code: string;
    try {
      code = await provider.getCode(address);
    } catch (err) {
      throw decodeChainError(err, AUDIT_ANCHOR_INTERFACE, `reading code at ${address}`);
    }
    if (code === '0x') throw new ChainError('NOT_AUDIT_ANCHOR', `no contract at ${address}`);
    try {
      const [role, max] = await Promise.all([contract.ANCHORER_ROLE() as Promise<string>, contract.MAX_TREE_SIZE() as Promise<bigint>]);
      if (role !== id('ANCHORER_ROLE') || max <= 0n) throw new Error(`ANCHORER_ROLE() = ${role}, MAX_TREE_SIZE() = ${max}`);
      await contract.checkpointCount();
    } catch (err) {
      const decoded = decodeChainError(err, AUDIT_ANCHOR_INTERFACE, `probing ${address}`);
      if (decoded.code === 'RPC_UNAVAILABLE') throw decoded;
      throw new ChainError('NOT_AUDIT_ANCHOR', `the contract at ${address} does not answer as AuditAnchor`, { cause: err });
    }
    const getAddress = (runner as { getAddress?: () => Promise<string> }).getAddress;
    const sender = typeof getAddress === 'function' ? await getAddress.call(runner) : undefined;
    return new AnchorClient(contract, provider as Provider, address, sender, options);
  }

  /** The latest block number. */
  async blockNumber(): Promise<number> {
    return this.read('eth_blockNumber', () => this.provider.getBlockNumber());
  }

  /** The sender's transaction count: `pending` counts transactions in the mempool, `latest` only mined ones. */
  async senderNonce(blockTag: 'pending' | 'latest'): Promise<number> {
    const sender = this.sender;
    if (sender === undefined) throw new ChainError('INVALID_ARGUMENT', 'this client has no signer: connect it with one to send');
    return this.read(`nonce of ${sender}`, () => this.provider.getTransactionCount(sender, blockTag));
  }

  /** The fees a transaction would pay now. */
  async feeData(): Promise<FeeData> {
    const fees = await this.read('fee data', () => this.provider.getFeeData());
    return { maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas };
  }

  /** The gas limit and fees transaction `txHash` was sent with, or null when the node does not know it. */
  async sentWith(txHash: string): Promise<(FeeData & { gasLimit: bigint }) | null> {
    const tx = await this.read(`looking up ${txHash}`, () => this.provider.getTransaction(txHash));
    return tx ? { gasLimit: tx.gasLimit, maxFeePerGas: tx.maxFeePerGas ?? tx.gasPrice ?? null, maxPriorityFeePerGas: tx.maxPriorityFeePerGas ?? null } : null;
  }

  /**
   * Every CheckpointAnchored event from `fromBlock` (the deployment block unless given) to `toBlock` (the
   * latest unless given), oldest first, read with eth_getLogs over at most logRangeBlocks blocks at a time.
   */
  async checkpointEvents(range: Partial<BlockRange> = {}): Promise<CheckpointAnchoredEvent[]> {
    const toBlock = range.toBlock ?? (await this.blockNumber());
    const topics = AUDIT_ANCHOR_INTERFACE.encodeFilterTopics('CheckpointAnchored', []);
    const events: CheckpointAnchoredEvent[] = [];
    for (const r of blockRanges(range.fromBlock ?? this.deploymentBlock, toBlock, this.logRangeBlocks)) {
      events.push(...(await this.getLogs(topics, r)).map(toCheckpointEvent));
    }
    return events;
  }

  /**
   * The CheckpointAnchored event of checkpoint `number` on the chain as it is now, or null. Scans back from
   * the latest block, logRangeBlocks at a time, down to the deployment block: a recent anchor costs one call.
   */
  async findCheckpointEvent(number: number): Promise<CheckpointAnchoredEvent | null> {
    const topics = AUDIT_ANCHOR_INTERFACE.encodeFilterTopics('CheckpointAnchored', [toUint64(number, 'number')]);
    for (const r of blockRanges(this.deploymentBlock, await this.blockNumber(), this.logRangeBlocks, 'descending')) {
      const logs = await this.getLogs(topics, r);
      if (logs.length > 0) return toCheckpointEvent(logs[logs.length - 1]);
    }
    return null;
  }

  /** Number of anchored checkpoints; drops if a reorg removed anchors. */
  async checkpointCount(): Promise<number> {
    return Number(await this.read('checkpointCount()', () => this.contract.checkpointCount()));
  }

  /** The last anchored checkpoint, or null when none is anchored yet. */
  async latestCheckpoint(): Promise<AnchoredCheckpoint | null> {
    const count = await this.checkpointCount();
    if (count === 0) return null;
    return this.checkpoint(count - 1);
  }

  /** Checkpoint `number`; ChainError UNKNOWN_CHECKPOINT when out of range. */
  async checkpoint(number: number): Promise<AnchoredCheckpoint> {
    const n = toUint64(number, 'number');
    const raw = await this.read(`checkpoint(${number})`, () => this.contract.checkpoint(n));
    return toCheckpoint(number, raw as CheckpointTuple);
  }

  /** The checkpoint anchored at exactly `treeSize`, or null: lets an anchoring loop stay idempotent after a restart. */
  async findCheckpointByTreeSize(treeSize: number): Promise<AnchoredCheckpoint | null> {
    const size = toUint64(treeSize, 'treeSize');
    const [found, number] = (await this.read(`checkpointNumberOf(${treeSize})`, () => this.contract.checkpointNumberOf(size))) as [
      boolean,
      bigint,
    ];
    return found ? this.checkpoint(Number(number)) : null;
  }

  /**
   * Sends anchor(oldSize, newSize, newRoot, proof) and returns the transaction hash without waiting for it
   * to be mined (record it, then call waitForAnchor). Unless overrides.gasLimit is set the call is simulated
   * first, so a failing proof or a stale oldSize throws its ChainError here and nothing is sent.
   */
  async anchor(oldSize: number, newSize: number, newRoot: HashInput, proof: readonly HashInput[], overrides: AnchorOverrides = {}): Promise<string> {
    const args = [
      toUint64(oldSize, 'oldSize'),
      toUint64(newSize, 'newSize'),
      toBytes32(newRoot, 'newRoot'),
      proof.map((h, i) => toBytes32(h, `proof[${i}]`)),
    ] as const;
    const tx = await this.write(`anchor(${oldSize}, ${newSize})`, () => this.contract.anchor(...args, cleanOverrides(overrides)));
    return tx;
  }

  /**
   * Waits until the anchor transaction has `confirmations` blocks and returns what it anchored. A reverted
   * transaction throws the decoded ChainError (replayed at its block), a wait beyond timeoutMs throws TIMEOUT.
   */
  async waitForAnchor(txHash: string, options: WaitForAnchorOptions = {}): Promise<AnchorReceipt> {
    const receipt = await this.waitForReceipt(txHash, options);
    if (receipt.status !== 1) throw await this.explainRevert(txHash, receipt);
    const log = receipt.logs.find(
      (l) => l.address.toLowerCase() === this.address.toLowerCase() && AUDIT_ANCHOR_INTERFACE.parseLog(l)?.name === 'CheckpointAnchored',
    );
    if (!log) throw new ChainError('REVERTED', `${txHash} succeeded but emitted no CheckpointAnchored`, { txHash });
    const { number, treeSize, rootHash, oldSize } = toCheckpointEvent(log);
    return {
      txHash,
      blockNumber: receipt.blockNumber,
      blockHash: receipt.blockHash,
      gasUsed: receipt.gasUsed,
      confirmations: await receipt.confirmations(),
      checkpoint: { number, treeSize, rootHash, oldSize },
    };
  }

  /** Where transaction `txHash` is now: `missing` (never seen, or dropped by a reorg), `pending`, or `mined`. */
  async transactionState(txHash: string): Promise<TransactionState> {
    try {
      const receipt = await this.provider.getTransactionReceipt(txHash);
      if (receipt) {
        return {
          status: 'mined',
          succeeded: receipt.status === 1,
          blockNumber: receipt.blockNumber,
          blockHash: receipt.blockHash,
          confirmations: await receipt.confirmations(),
        };
      }
      return (await this.provider.getTransaction(txHash)) ? { status: 'pending' } : { status: 'missing' };
    } catch (err) {
      throw decodeChainError(err, AUDIT_ANCHOR_INTERFACE, `looking up ${txHash}`, txHash);
    }
  }

  /**
   * Asks the contract whether `leafHash` is at `index` in the anchored tree of size `treeSize`. False for any
   * proof that does not verify; ChainError UNKNOWN_TREE_SIZE when no checkpoint has that size.
   */
  async verifyInclusion(leafHash: HashInput, index: number, treeSize: number, proof: readonly HashInput[]): Promise<boolean> {
    const args = [
      toBytes32(leafHash, 'leafHash'),
      toUint64(index, 'index'),
      toUint64(treeSize, 'treeSize'),
      proof.map((h, i) => toBytes32(h, `proof[${i}]`)),
    ] as const;
    return (await this.read('verifyInclusion', () => this.contract.verifyInclusion(...args))) as boolean;
  }

  /** Runs the contract's consistency check on two tree heads (no state involved); false when it fails. */
  async verifyConsistency(size1: number, size2: number, root1: HashInput, root2: HashInput, proof: readonly HashInput[]): Promise<boolean> {
    const args = [
      toUint64(size1, 'size1'),
      toUint64(size2, 'size2'),
      toBytes32(root1, 'root1'),
      toBytes32(root2, 'root2'),
      proof.map((h, i) => toBytes32(h, `proof[${i}]`)),
    ] as const;
    return (await this.read('verifyConsistency', () => this.contract.verifyConsistency(...args))) as boolean;
  }

  /** Whether `account` holds ANCHORER_ROLE. */
  async isAnchorer(account: string): Promise<boolean> {
    const role = (await this.read('ANCHORER_ROLE()', () => this.contract.ANCHORER_ROLE())) as string;
    return (await this.read('hasRole', () => this.contract.hasRole(role, account))) as boolean;
  }

  /** Whether anchoring is paused. */
  async isPaused(): Promise<boolean> {
    return (await this.read('paused()', () => this.contract.paused())) as boolean;
  }

  /**
   * The most entries one anchor may add, or null for a contract deployed before the bound existed (it has no
   * maxAnchorJump(); the only bound is MAX_TREE_SIZE).
   */
  async maxAnchorJump(): Promise<number | null> {
    try {
      return Number(await this.read('maxAnchorJump()', () => this.contract.maxAnchorJump()));
    } catch (err) {
      if (isMissingFunction(err)) return null;
      throw err;
    }
  }

  /** Sets the jump bound (admin only); returns the transaction hash. */
  async setMaxAnchorJump(maxJump: number): Promise<string> {
    const value = toUint64(maxJump, 'maxJump');
    return this.write(`setMaxAnchorJump(${maxJump})`, () => this.contract.setMaxAnchorJump(value));
  }

  /**
   * The AuditAnchor this one succeeds and the checkpoint on it the operator vouched for, or null when it
   * succeeds none (or was deployed before successors existed).
   */
  predecessor(): Promise<Predecessor | null> {
    this.predecessorRead ??= this.readPredecessor();
    const read = this.predecessorRead;
    read.catch(() => (this.predecessorRead = undefined)); // a failed read is tried again next time
    return read;
  }

  /** Grants ANCHORER_ROLE (admin only); returns the transaction hash. */
  async grantAnchorer(account: string): Promise<string> {
    const role = (await this.read('ANCHORER_ROLE()', () => this.contract.ANCHORER_ROLE())) as string;
    return this.write('grantRole', () => this.contract.grantRole(role, account));
  }

  /** Revokes ANCHORER_ROLE (admin only); returns the transaction hash. */
  async revokeAnchorer(account: string): Promise<string> {
    const role = (await this.read('ANCHORER_ROLE()', () => this.contract.ANCHORER_ROLE())) as string;
    return this.write('revokeRole', () => this.contract.revokeRole(role, account));
  }

  /** Pauses anchoring (admin only); returns the transaction hash. */
  async pause(): Promise<string> {
    return this.write('pause()', () => this.contract.pause());
  }

  /** Resumes anchoring (admin only); returns the transaction hash. */
  async unpause(): Promise<string> {
    return this.write('unpause()', () => this.contract.unpause());
  }

  /** Waits for any transaction of this client (role changes, pause) and throws its decoded error if it reverted. */
  async waitForTransaction(txHash: string, options: WaitForAnchorOptions = {}): Promise<void> {
    const receipt = await this.waitForReceipt(txHash, options);
    if (receipt.status !== 1) throw await this.explainRevert(txHash, receipt);
  }

  /**
   * Polls for the receipt until it has enough confirmations (ethers' block listener can miss blocks mined
   * before its first poll). A receipt that vanishes while waiting (reorg) just means waiting on.
   */
  private async waitForReceipt(txHash: string, options: WaitForAnchorOptions): Promise<TransactionReceipt> {
    const confirmations = options.confirmations ?? 1;
    const timeoutMs = options.timeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const pollMs = Math.min(1000, Math.max(20, (this.provider as { pollingInterval?: number }).pollingInterval ?? 500));
    for (;;) {
      try {
        const receipt = await this.provider.getTransactionReceipt(txHash);
        if (receipt) {
          const head = await this.provider.getBlockNumber();
          if (head - receipt.blockNumber + 1 >= confirmations) return receipt;
        }
      } catch (err) {
        throw decodeChainError(err, AUDIT_ANCHOR_INTERFACE, `waiting for ${txHash}`, txHash);
      }
      if (Date.now() >= deadline) {
        throw new ChainError('TIMEOUT', `${txHash} has not reached ${confirmations} confirmation(s) in ${timeoutMs} ms`, { txHash });
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /**
   * One eth_getLogs call on this contract. A refusal that is not the node being down (most often a range
   * or result count beyond its limit) is LOGS_REFUSED.
   */
  private async getLogs(topics: (string | string[] | null)[], range: BlockRange): Promise<Log[]> {
    try {
      return await this.provider.getLogs({ address: this.address, topics, ...range });
    } catch (err) {
      const what = `eth_getLogs over blocks ${range.fromBlock}..${range.toBlock}`;
      const decoded = decodeChainError(err, AUDIT_ANCHOR_INTERFACE, what);
      if (decoded.code === 'RPC_UNAVAILABLE' || decoded.code === 'TIMEOUT') throw decoded;
      throw new ChainError(
        'LOGS_REFUSED',
        `${what} was refused (${decoded.message}); a node that caps eth_getLogs needs a smaller logRangeBlocks than ${this.logRangeBlocks}`,
        { cause: err },
      );
    }
  }

  private async readPredecessor(): Promise<Predecessor | null> {
    let raw: [string, bigint, string];
    try {
      raw = (await this.read('predecessor()', () => this.contract.predecessor())) as [string, bigint, string];
    } catch (err) {
      if (isMissingFunction(err)) return null;
      throw err;
    }
    const [address, vouchedSize, vouchedRoot] = raw;
    if (address === ZeroAddress) return null;
    return { address: address.toLowerCase(), vouchedSize: Number(vouchedSize), vouchedRoot: fromBytes32(vouchedRoot) };
  }

  private async read<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw decodeChainError(err, AUDIT_ANCHOR_INTERFACE, what);
    }
  }

  private async write(what: string, send: () => Promise<{ hash: string }>): Promise<string> {
    try {
      return (await send()).hash;
    } catch (err) {
      throw decodeChainError(err, AUDIT_ANCHOR_INTERFACE, what);
    }
  }

  /**
   * Replays a reverted transaction as a call to recover its custom error: first on the state after its block
   * (which holds any transaction mined before it in that block, e.g. a rival anchor), then on the state before.
   */
  private async explainRevert(txHash: string, receipt: TransactionReceipt): Promise<ChainError> {
    const tx = await this.provider.getTransaction(txHash);
    if (tx) {
      for (const blockTag of [receipt.blockNumber, receipt.blockNumber - 1]) {
        try {
          await this.provider.call({ to: tx.to, from: tx.from, data: tx.data, blockTag });
        } catch (err) {
          return decodeChainError(err, AUDIT_ANCHOR_INTERFACE, `transaction ${txHash}`, txHash);
        }
      }
    }
    return new ChainError('REVERTED', `transaction ${txHash} reverted (a replay did not say why)`, { txHash });
  }
}

const DEFAULT_LOG_RANGE_BLOCKS = 10_000;

type CheckpointTuple = { treeSize: bigint; rootHash: string; timestamp: bigint };

function toCheckpointEvent(log: Log): CheckpointAnchoredEvent {
  const { args } = AUDIT_ANCHOR_INTERFACE.parseLog(log) as LogDescription;
  return {
    number: Number(args.number),
    treeSize: Number(args.treeSize),
    rootHash: fromBytes32(args.rootHash as string),
    oldSize: Number(args.oldSize),
    txHash: log.transactionHash,
    blockNumber: log.blockNumber,
  };
}

function toCheckpoint(number: number, raw: CheckpointTuple): AnchoredCheckpoint {
  return { number, treeSize: Number(raw.treeSize), rootHash: fromBytes32(raw.rootHash), timestamp: Number(raw.timestamp) };
}

/** A call to a view an older AuditAnchor lacks: it reverts without data (no custom error to decode). */
function isMissingFunction(err: unknown): boolean {
  return err instanceof ChainError && err.code === 'REVERTED' && err.errorName === undefined;
}

function cleanOverrides(overrides: AnchorOverrides): Record<string, unknown> {
  return Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
}
