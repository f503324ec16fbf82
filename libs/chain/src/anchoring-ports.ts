import type { AnchorClient } from './anchor-client';

// What the anchoring engine needs from its surroundings: the chain (a connection), the log it anchors,
// durable records of its attempts, a lock so that one process anchors, a logger and a clock. The service
// implements these on PostgreSQL (apps/api/src/anchoring); the engine knows none of it.

/** A live connection to an AuditAnchor contract with the anchorer's key. */
export interface ChainConnection {
  chainId: string;
  /** Hash of block 0, which tells apart two chains with the same id. */
  genesisHash: string;
  /** Lowercase 0x address. */
  contract: string;
  /** The RPC URL as it may be shown: scheme, host and port only (redactRpcUrl). */
  rpcUrl: string;
  /** True for an ephemeral local chain the service started itself: its connector keeps this connection while the node runs, and starts a new node (a new chain) when it stopped. */
  local: boolean;
  /** Connected with the anchorer's key: it sends the anchors. */
  client: AnchorClient;
  close(): Promise<void>;
}

/** Opens the chain connection; may fail with ChainError (RPC_UNAVAILABLE and friends): the engine retries. */
export type ChainConnector = () => Promise<ChainConnection>;

/** Which contract on which chain an attempt belongs to. */
export type ChainKey = Pick<ChainConnection, 'chainId' | 'genesisHash' | 'contract'>;

/** The chain in use (which one, and how far it is). */
export interface ChainHead extends ChainKey {
  blockNumber: number;
}

/** A confirmed anchor, as the engine appends it to the log (the log's ANCHORED entry). */
export interface ConfirmedAnchor {
  chainId: string;
  /** Lowercase 0x address. */
  contract: string;
  /** Lowercase 0x hash. */
  txHash: string;
  blockNumber: number;
  treeSize: number;
  rootHash: string;
}

/** The log being anchored. */
export interface AnchoringLog {
  /** The latest size and root. */
  getCheckpoint(): Promise<{ treeSize: number; rootHash: string }>;
  /** The root at `treeSize` (lowercase hex). */
  getRoot(treeSize: number): Promise<string>;
  /** RFC 9162 consistency proof from `from` (at least 1) to `to`. */
  getConsistencyProof(from: number, to: number): Promise<{ proof: string[] }>;
  /** How many entries from index `start` on are not the engine's own anchor records, counted up to `atMost` only. */
  countWaiting(start: number, atMost: number): Promise<number>;
  /** The index of the entry that records the anchor in transaction `txHash`, or null when none does. */
  findAnchorEntry(txHash: string): Promise<number | null>;
  /** Appends the record of a confirmed anchor; resolves with its index once durable. */
  appendAnchorEntry(anchor: ConfirmedAnchor): Promise<number>;
}

/**
 * Where an attempt is: written `sending` before its transaction is sent, `sent` once it is, `confirmed` once
 * logged; `failed` (reverted or refused) and `dropped` (never sent, lost from the mempool, or removed by a
 * reorg) are final, and the checkpoint is anchored again by a new attempt.
 */
export type AnchorAttemptState = 'sending' | 'sent' | 'confirmed' | 'failed' | 'dropped';

/** One attempt to anchor a checkpoint on one contract. Hashes lowercase hex (transactions with 0x). */
export interface AnchorAttempt {
  id: string;
  treeSize: number;
  oldSize: number;
  rootHash: string;
  state: AnchorAttemptState;
  /** Every transaction sent for it (replacements included), latest last. */
  txHashes: string[];
  /** The transaction that anchored it, once mined. */
  txHash: string | null;
  nonce: number | null;
  blockNumber: number | null;
  /** When the attempt last changed: how long a transaction has been pending. */
  updatedAt: Date;
}

export type NewAnchorAttempt = Pick<AnchorAttempt, 'treeSize' | 'oldSize' | 'rootHash' | 'state'> &
  Partial<Pick<AnchorAttempt, 'txHashes' | 'txHash' | 'nonce'>>;

export type AnchorAttemptChange = Partial<Pick<AnchorAttempt, 'state' | 'txHashes' | 'txHash' | 'blockNumber'>> & {
  /** Index of the log entry that records it (with state `confirmed`). */
  ledgerIndex?: number;
  error?: string | null;
};

/** Durable records of the attempts, written before each step is taken: a restart resumes from them. */
export interface AnchorAttemptStore {
  /** The attempt in flight on this contract (`sending` before `sent`; at most one of each), or null. */
  findInFlight(chain: ChainKey): Promise<AnchorAttempt | null>;
  /** The `limit` confirmed attempts of largest tree size on this contract, largest first. */
  findConfirmed(chain: ChainKey, limit: number): Promise<AnchorAttempt[]>;
  create(chain: ChainKey, attempt: NewAnchorAttempt): Promise<AnchorAttempt>;
  /** Records a change (and the time of it, the attempt's new updatedAt). */
  update(id: string, change: AnchorAttemptChange): Promise<void>;
}

/** Held by the one process that anchors (several may run on one log). */
export interface AnchoringLock {
  /** True once this process holds it (then again true), false while another does. */
  tryAcquire(): Promise<boolean>;
  release(): Promise<void>;
}

/** Where the engine says what it does (Nest's Logger fits). */
export interface AnchoringLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface AnchoringPolicy {
  /** Anchor once this many entries (other than the anchor records) wait... */
  everyEntries: number;
  /** ...or once this many seconds passed since the last anchor with at least one waiting. */
  everySeconds: number;
  /** Blocks to wait, counting the one holding the anchor, before the anchor is recorded in the log. */
  confirmations: number;
  /** A transaction still pending after this long is replaced (same nonce, higher fees). */
  replaceAfterSeconds: number;
  /** How often the engine looks at the chain and the log. */
  pollMs: number;
}

/**
 * `chain-unavailable`: the RPC does not answer. `reconnecting`: the engine lost the chain it anchored on and its
 * connection cannot be made again although the RPC answers (e.g. a restarted node without the contract yet:
 * lastError says why); `error` is any other failure, a first connection that cannot be made included.
 */
export type AnchoringState = 'starting' | 'ok' | 'chain-unavailable' | 'reconnecting' | 'inconsistent' | 'not-anchorer' | 'error' | 'stopped';

/** What the engine reports (the service shows it in /v1/health). */
export interface AnchoringStatus {
  state: AnchoringState;
  chainId?: string;
  genesisHash?: string;
  contract?: string;
  rpcUrl?: string;
  /** The largest tree size anchored on the contract (on a successor: at least its vouched checkpoint's). */
  anchoredTreeSize?: number;
  /** Set when the contract succeeds a compromised one: that contract and the checkpoint on it vouched for. */
  predecessor?: { contract: string; vouchedSize: number; vouchedRoot: string };
  pendingTreeSize?: number;
  pendingTxHash?: string;
  /** Transactions sent for the pending anchor: 1 as sent, 2 once replaced with the same nonce and higher fees, and so on. */
  pendingTransactions?: number;
  lastError?: string;
  retryInSeconds?: number;
  blockNumber?: number;
  /** The last confirmed anchor a reorg removed from the chain (it is anchored again), and when that was seen. */
  lastReorg?: { treeSize: number; txHash: string | null; detectedAt: string };
}
