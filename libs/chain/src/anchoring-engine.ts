import type {
  AnchorAttempt,
  AnchorAttemptStore,
  AnchoringLock,
  AnchoringLog,
  AnchoringLogger,
  AnchoringPolicy,
  AnchoringState,
  AnchoringStatus,
  ChainConnection,
  ChainConnector,
  ChainHead,
} from './anchoring-ports';
import { chainErrorText, redactText } from '@lethe/redact';
import { ChainError } from './errors';

export interface AnchoringEngineOptions {
  connect: ChainConnector;
  policy: AnchoringPolicy;
  log: AnchoringLog;
  attempts: AnchorAttemptStore;
  /** Without one, this engine assumes it is the only one anchoring its log. */
  lock?: AnchoringLock;
  logger: AnchoringLogger;
  /** The clock (ms since the epoch); tests drive it instead of sleeping. */
  now?: () => number;
}

/** How long a process that does not hold the lock waits before trying again. */
const STANDBY_MS = 5000;
/** Longest wait between retries while the chain fails. */
const MAX_BACKOFF_MS = 60_000;

/**
 * Anchors the log's checkpoints on AuditAnchor and records each confirmed anchor in the log.
 *
 * Every decision is taken from durable state (the attempt records, the contract, the log), so a restart
 * at any point resumes: an attempt is recorded before its transaction is sent; a checkpoint found on the
 * chain but not recorded is adopted (its transaction found in the contract's events, scanned in bounded
 * block ranges); a reverted or dropped transaction is retried from what the contract holds, a pending one
 * replaced with higher fees, and a confirmed anchor a reorg removed is anchored again. The contract's
 * compare-and-set on the old size means a size is never anchored twice. While the chain is unreachable
 * the log keeps accepting entries and the engine retries with exponential backoff.
 */
export class AnchoringEngine {
  private readonly connect: ChainConnector;
  private readonly policy: AnchoringPolicy;
  private readonly log: AnchoringLog;
  private readonly attempts: AnchorAttemptStore;
  private readonly lock?: AnchoringLock;
  private readonly logger: AnchoringLogger;
  private readonly now: () => number;
  private connection?: ChainConnection;
  private status: AnchoringStatus = { state: 'starting' };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failures = 0;
  /** The engine has had a connection (so a failing connect() is a reconnection), and is making one now. */
  private connectedOnce = false;
  private connecting = false;
  private lastAnchorAt: number;
  private wake?: () => void;

  constructor(options: AnchoringEngineOptions) {
    this.connect = options.connect;
    this.policy = options.policy;
    this.log = options.log;
    this.attempts = options.attempts;
    this.lock = options.lock;
    // Every line it logs, like every error it shows (lastError), goes through the one redaction.
    this.logger = {
      log: (m) => options.logger.log(redactText(m)),
      warn: (m) => options.logger.warn(redactText(m)),
      error: (m) => options.logger.error(redactText(m)),
    };
    this.now = options.now ?? Date.now;
    this.lastAnchorAt = this.now();
  }

  getStatus(): AnchoringStatus {
    return { ...this.status };
  }

  /** The chain in use, once connected. */
  getConnection(): ChainConnection | undefined {
    return this.connection;
  }

  /** Which chain is in use and its latest block, for confirmation counts; undefined when not connected or down. */
  async getChainHead(): Promise<ChainHead | undefined> {
    const connection = this.connection;
    if (!connection) return undefined;
    try {
      return {
        chainId: connection.chainId,
        genesisHash: connection.genesisHash,
        contract: connection.contract,
        blockNumber: await connection.client.blockNumber(),
      };
    } catch {
      return undefined; // chain down: confirmations unknown
    }
  }

  /** Starts the loop in the background. Only the holder of the lock anchors; other processes stand by. */
  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.status = { ...this.status, state: 'stopped' };
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.running;
    await this.lock?.release().catch(() => undefined);
    await this.connection?.close();
  }

  /** Runs one pass now (tests and the benchmark use it to avoid waiting for the poll). */
  async tick(): Promise<void> {
    if (!this.connection) {
      this.connecting = true;
      this.connection = await this.connect();
      this.connecting = false;
      this.connectedOnce = true;
    }
    const c = this.connection;
    const blockNumber = await c.client.blockNumber();
    this.status = { ...this.status, chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, rpcUrl: c.rpcUrl, blockNumber };
    await this.detectReorgs(c);
    const inFlight = await this.attempts.findInFlight(c);
    if (inFlight) {
      await this.advance(c, inFlight);
    } else {
      await this.adoptUnrecorded(c);
      await this.maybeAnchor(c);
    }
    const latest = await this.latestConfirmed(c);
    const pending = await this.attempts.findInFlight(c);
    const predecessor = await c.client.predecessor();
    this.status = {
      ...this.status,
      state: this.status.state === 'inconsistent' ? 'inconsistent' : 'ok',
      // On a successor, the vouched checkpoint is anchored there until the engine's own anchors pass it.
      anchoredTreeSize: latest ? latest.treeSize : (predecessor?.vouchedSize ?? 0),
      predecessor: predecessor ? { contract: predecessor.address, vouchedSize: predecessor.vouchedSize, vouchedRoot: predecessor.vouchedRoot } : undefined,
      pendingTreeSize: pending ? pending.treeSize : undefined,
      pendingTxHash: pending?.txHash ?? pending?.txHashes.at(-1),
      pendingTransactions: pending ? pending.txHashes.length : undefined,
      lastError: this.status.state === 'inconsistent' ? this.status.lastError : undefined,
      retryInSeconds: undefined,
    };
  }

  private async loop(): Promise<void> {
    if (this.lock && !(await this.lock.tryAcquire())) {
      this.logger.log('another process holds the anchoring lock; this one stands by');
      while (!this.stopped && !(await this.lock.tryAcquire())) await this.sleep(STANDBY_MS);
      if (this.stopped) return;
    }
    while (!this.stopped) {
      let delay = this.policy.pollMs;
      try {
        await this.tick();
        if (this.failures > 0) this.logger.log('the chain answers again; anchoring resumes');
        this.failures = 0;
      } catch (error) {
        delay = this.onFailure(error);
      }
      await this.sleep(delay);
    }
  }

  private onFailure(error: unknown): number {
    this.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, this.policy.pollMs * 2 ** Math.min(this.failures, 10));
    const chainDown = error instanceof ChainError && (error.code === 'RPC_UNAVAILABLE' || error.code === 'TIMEOUT');
    // A connection that cannot be made again, to a chain that answers, after the engine had one (a restarted
    // node that does not hold the contract yet, say) is a reconnection under way, not an anchoring error.
    const reconnecting = this.connecting && this.connectedOnce;
    this.connecting = false;
    const state: AnchoringState = chainDown
      ? 'chain-unavailable'
      : error instanceof ChainError && error.code === 'NOT_ANCHORER'
        ? 'not-anchorer'
        : reconnecting
          ? 'reconnecting'
          : 'error';
    const message = chainErrorText(error);
    const what = chainDown ? 'chain unavailable' : reconnecting ? 'cannot connect to the chain again' : 'anchoring failed';
    if (this.failures === 1 || this.failures % 10 === 0 || state !== this.status.state)
      this.logger.warn(`${what}: ${message}; the log keeps accepting entries; retrying in ${Math.round(backoff / 1000)} s`);
    this.status = { ...this.status, state, lastError: message, retryInSeconds: Math.round(backoff / 1000) };
    if (chainDown && this.connection) {
      // Reconnect from scratch next time (a restarted node may be another process). A local chain's connector
      // keeps its connection while its node runs, and starts a new node when it stopped: it closes what it replaces.
      if (!this.connection.local) void this.connection.close().catch(() => undefined);
      this.connection = undefined;
    }
    return backoff;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async latestConfirmed(c: ChainConnection): Promise<AnchorAttempt | null> {
    const [latest] = await this.attempts.findConfirmed(c, 1);
    return latest ?? null;
  }

  /** A confirmed anchor whose checkpoint is no longer on the chain was dropped by a reorg: anchor again. */
  private async detectReorgs(c: ChainConnection): Promise<void> {
    for (const attempt of await this.attempts.findConfirmed(c, 3)) {
      const onChain = await c.client.findCheckpointByTreeSize(attempt.treeSize);
      if (onChain && onChain.rootHash === attempt.rootHash) continue;
      this.logger.warn(
        `a reorg removed the anchor of tree size ${attempt.treeSize} (tx ${attempt.txHash}); the checkpoint will be anchored again`,
      );
      await this.attempts.update(attempt.id, { state: 'dropped', error: 'removed from the chain by a reorg' });
      this.status = { ...this.status, lastReorg: { treeSize: attempt.treeSize, txHash: attempt.txHash, detectedAt: new Date(this.now()).toISOString() } };
    }
  }

  /** Moves an in-flight attempt on: confirm it, wait, replace it, or give it up. */
  private async advance(c: ChainConnection, attempt: AnchorAttempt): Promise<void> {
    const { treeSize } = attempt;
    if (attempt.state === 'sending') {
      // The process stopped between recording the attempt and recording its transaction.
      const onChain = await c.client.findCheckpointByTreeSize(treeSize);
      if (onChain) {
        const txHash = await this.findAnchorTransaction(c, onChain.number);
        await this.attempts.update(attempt.id, { state: 'sent', txHash, txHashes: txHash ? [txHash] : [] });
        return;
      }
      const nonce = await c.client.senderNonce('pending');
      if (attempt.nonce === null || nonce <= attempt.nonce) {
        await this.attempts.update(attempt.id, { state: 'dropped', error: 'never sent (the service stopped before sending)' });
      }
      return;
    }
    for (const txHash of [...attempt.txHashes].reverse()) {
      const state = await c.client.transactionState(txHash);
      if (state.status !== 'mined') continue;
      if (!state.succeeded) {
        let reason = 'reverted';
        try {
          await c.client.waitForAnchor(txHash, { confirmations: 1, timeoutMs: 5000 });
        } catch (error) {
          reason = error instanceof ChainError ? `${error.code}: ${error.message}` : chainErrorText(error);
          if (error instanceof ChainError && error.code === 'INCONSISTENT_ROOT') this.alarm(`the contract refused root ${attempt.rootHash} at size ${treeSize} as inconsistent`);
        }
        this.logger.warn(`anchor of tree size ${treeSize} failed on-chain (${reason}); trying again from the contract's state`);
        await this.attempts.update(attempt.id, { state: 'failed', txHash, error: reason.slice(0, 1000) });
        return;
      }
      await this.attempts.update(attempt.id, { txHash, blockNumber: state.blockNumber });
      if (state.confirmations < this.policy.confirmations) return; // wait for more blocks
      const receipt = await c.client.waitForAnchor(txHash, { confirmations: this.policy.confirmations, timeoutMs: 10_000 });
      await this.record(c, attempt, receipt.blockNumber, txHash);
      return;
    }
    // Nothing mined yet.
    const last = attempt.txHashes.at(-1)!;
    const lastState = await c.client.transactionState(last);
    const ageSeconds = (this.now() - attempt.updatedAt.getTime()) / 1000;
    if (lastState.status === 'missing') {
      const onChain = await c.client.findCheckpointByTreeSize(treeSize);
      const minedNonce = await c.client.senderNonce('latest');
      if (onChain) {
        // Mined through a transaction we did not see (replaced by another sender of the same key).
        const txHash = await this.findAnchorTransaction(c, onChain.number);
        if (txHash) await this.attempts.update(attempt.id, { txHashes: [...attempt.txHashes, txHash] });
        return;
      }
      if (attempt.blockNumber !== null || (attempt.nonce !== null && minedNonce > attempt.nonce) || ageSeconds > 30) {
        this.logger.warn(`anchor transaction ${last} for tree size ${treeSize} disappeared (dropped or replaced); anchoring again`);
        await this.attempts.update(attempt.id, { state: 'dropped', error: 'transaction dropped' });
      }
      return;
    }
    if (lastState.status === 'pending' && ageSeconds > this.policy.replaceAfterSeconds && attempt.nonce !== null) {
      await this.replace(c, attempt);
    }
  }

  /**
   * Sends the same anchor again with the same nonce and the node's fees raised by 30%, when that outbids the
   * transaction it replaces: a node takes a replacement only at 10% more on both fees, and without a rise
   * of the node's fees since the last one was sent, the same fees would make the same transaction again (the
   * node refuses it as known). So a stuck anchor is replaced once, and again only once the fees have risen.
   */
  private async replace(c: ChainConnection, attempt: AnchorAttempt): Promise<void> {
    const last = attempt.txHashes.at(-1)!;
    const [fees, sent] = await Promise.all([c.client.feeData(), c.client.sentWith(last)]);
    const bump = (v: bigint | null) => (v === null ? undefined : (v * 13n) / 10n + 1n);
    const maxFeePerGas = bump(fees.maxFeePerGas);
    const maxPriorityFeePerGas = bump(fees.maxPriorityFeePerGas);
    if (sent && !(outbids(maxFeePerGas, sent.maxFeePerGas) && outbids(maxPriorityFeePerGas, sent.maxPriorityFeePerGas))) return;
    const { oldSize, treeSize } = attempt;
    const proof = oldSize === 0 ? [] : (await this.log.getConsistencyProof(oldSize, treeSize)).proof;
    let txHash: string;
    try {
      // The original is in the pending state, so a simulation would fail against it: reuse its gas limit.
      txHash = await c.client.anchor(oldSize, treeSize, attempt.rootHash, proof, {
        nonce: attempt.nonce!,
        gasLimit: sent?.gasLimit ?? 500_000n,
        maxFeePerGas,
        maxPriorityFeePerGas,
      });
    } catch (error) {
      // Mined meanwhile (the nonce is used), or underpriced after all: the next pass sees which.
      if (error instanceof ChainError && error.code === 'NONCE_CONFLICT') return;
      throw error;
    }
    this.logger.warn(`anchor of tree size ${treeSize} still pending; replaced it with ${txHash} (same nonce, higher fees)`);
    await this.attempts.update(attempt.id, { txHashes: [...attempt.txHashes, txHash] });
  }

  /** Records a confirmed anchor in the log (once: it looks for an entry of the same transaction first). */
  private async record(c: ChainConnection, attempt: AnchorAttempt, blockNumber: number, txHash: string): Promise<void> {
    const { treeSize } = attempt;
    const ledgerIndex =
      (await this.log.findAnchorEntry(txHash.toLowerCase())) ??
      (await this.log.appendAnchorEntry({
        chainId: c.chainId,
        contract: c.contract,
        txHash: txHash.toLowerCase(),
        blockNumber,
        treeSize,
        rootHash: attempt.rootHash,
      }));
    await this.attempts.update(attempt.id, { state: 'confirmed', txHash, blockNumber, ledgerIndex, error: null });
    this.lastAnchorAt = this.now();
    this.logger.log(`anchored tree size ${treeSize} root ${attempt.rootHash} in ${txHash} (block ${blockNumber}); logged at index ${ledgerIndex}`);
  }

  /** Checkpoints on the contract that the records do not hold as confirmed (a restart, another anchorer). */
  private async adoptUnrecorded(c: ChainConnection): Promise<void> {
    const count = await c.client.checkpointCount();
    if (count === 0) return;
    const latest = await c.client.checkpoint(count - 1);
    const known = await this.latestConfirmed(c);
    if (known && known.treeSize === latest.treeSize) return;
    const { treeSize: logSize } = await this.log.getCheckpoint();
    if (latest.treeSize > logSize || (await this.log.getRoot(latest.treeSize)) !== latest.rootHash) {
      this.alarm(
        `the chain's checkpoint ${latest.number} (size ${latest.treeSize}, root ${latest.rootHash}) is not a state of this log (size ${logSize})`,
      );
      return;
    }
    // A successor's checkpoint 0 is the one its deployment vouched for (checked above like any): no anchor to adopt.
    if (latest.number === 0 && (await c.client.predecessor())?.vouchedSize === latest.treeSize) return;
    const txHash = await this.findAnchorTransaction(c, latest.number);
    if (!txHash) return;
    const receipt = await c.client.waitForAnchor(txHash, { confirmations: this.policy.confirmations, timeoutMs: 10_000 });
    const adopted = await this.attempts.create(c, {
      treeSize: latest.treeSize,
      oldSize: receipt.checkpoint.oldSize,
      rootHash: latest.rootHash,
      state: 'sent',
      txHashes: [txHash],
      txHash,
    });
    this.logger.log(`found the anchor of tree size ${latest.treeSize} on the chain (tx ${txHash}) without a record; recording it`);
    await this.record(c, adopted, receipt.blockNumber, txHash);
  }

  /** The transaction that anchored checkpoint `number`, from the contract's CheckpointAnchored events (scanned in bounded ranges). */
  private async findAnchorTransaction(c: ChainConnection, number: number): Promise<string | null> {
    return (await c.client.findCheckpointEvent(number))?.txHash ?? null;
  }

  private alarm(message: string): void {
    if (this.status.state !== 'inconsistent') this.logger.error(`${message}: anchoring stops until this is resolved`);
    this.status = { ...this.status, state: 'inconsistent', lastError: message };
  }

  /**
   * Sends an anchor when the policy says so: of the log's current size, or, when the log is further ahead of
   * the chain than the contract's maxAnchorJump, of the next maxAnchorJump entries (the rest follows in the
   * next passes, one anchor at a time, without waiting for the policy again).
   */
  private async maybeAnchor(c: ChainConnection): Promise<void> {
    if (this.status.state === 'inconsistent') return;
    const onChain = await c.client.latestCheckpoint();
    const oldSize = onChain?.treeSize ?? 0;
    const { treeSize: logSize } = await this.log.getCheckpoint();
    if (logSize <= oldSize) return;
    if (onChain && (await this.log.getRoot(oldSize)) !== onChain.rootHash) {
      this.alarm(`the chain's latest root at size ${oldSize} is not this log's root at that size`);
      return;
    }
    // Counted up to the threshold only: after a long outage the log may be far ahead.
    const waiting = await this.log.countWaiting(oldSize, this.policy.everyEntries);
    if (waiting === 0) return; // only our own anchor records since: nothing new to anchor
    const maxJump = (await c.client.maxAnchorJump()) ?? Infinity;
    const backlog = logSize - oldSize > maxJump;
    const due = backlog || waiting >= this.policy.everyEntries || this.now() - this.lastAnchorAt >= this.policy.everySeconds * 1000;
    if (!due) return;
    const newSize = Math.min(logSize, oldSize + maxJump);

    const rootHash = await this.log.getRoot(newSize);
    const proof = oldSize === 0 ? [] : (await this.log.getConsistencyProof(oldSize, newSize)).proof;
    const nonce = await c.client.senderNonce('pending');
    const attempt = await this.attempts.create(c, { treeSize: newSize, oldSize, rootHash, state: 'sending', nonce });
    let txHash: string;
    try {
      txHash = await c.client.anchor(oldSize, newSize, rootHash, proof, { nonce });
    } catch (error) {
      const reason = error instanceof ChainError ? `${error.code}: ${error.message}` : chainErrorText(error);
      await this.attempts.update(attempt.id, { state: 'failed', error: reason.slice(0, 1000) });
      if (error instanceof ChainError && error.code === 'INCONSISTENT_ROOT') this.alarm(`the contract refused root ${rootHash} at size ${newSize}`);
      throw error;
    }
    await this.attempts.update(attempt.id, { state: 'sent', txHashes: [txHash] });
    this.logger.log(
      `sent anchor of tree size ${oldSize} -> ${newSize} root ${rootHash}: ${txHash}` +
        (backlog ? ` (the log has ${logSize} entries; the contract takes at most ${maxJump} per anchor, the rest follows)` : ''),
    );
  }
}

/** Whether fee `offered` outbids `paid` by the 10% a node asks of a replacement (nothing to outbid when the chain has no such fee). */
function outbids(offered: bigint | undefined, paid: bigint | null): boolean {
  if (paid === null || offered === undefined) return true;
  return offered * 10n >= paid * 11n;
}
