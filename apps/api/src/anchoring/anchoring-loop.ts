import { Logger } from '@nestjs/common';
import { DataSource, Repository } from 'typeorm';
import { ChainError } from '@lethe/chain';
import { Anchored } from '@lethe/events';
import { Ledger } from '@lethe/ledger';
import { HealthReporter } from '../health/health.service';
import { AnchorRecordEntity } from './anchor-record.entity';
import { ChainConnection, ChainConnector } from './chain-connection';

export interface AnchoringPolicy {
  /** Anchor once this many entries (other than ANCHORED ones) wait... */
  everyEntries: number;
  /** ...or once this many seconds passed since the last anchor with at least one waiting. */
  everySeconds: number;
  /** Blocks to wait, counting the one holding the anchor, before ANCHORED is logged. */
  confirmations: number;
  /** A transaction still pending after this long is replaced (same nonce, higher fees). */
  replaceAfterSeconds: number;
  /** How often the loop looks at the chain and the log. */
  pollMs: number;
}

/** The chain in use (which one, and how far it is). */
export interface ChainHead {
  chainId: string;
  genesisHash: string;
  contract: string;
  blockNumber: number;
}

export type AnchoringState = 'starting' | 'ok' | 'chain-unavailable' | 'inconsistent' | 'not-anchorer' | 'error' | 'stopped';

export interface AnchoringStatus {
  state: AnchoringState;
  chainId?: string;
  genesisHash?: string;
  contract?: string;
  rpcUrl?: string;
  anchoredTreeSize?: number;
  pendingTreeSize?: number;
  pendingTxHash?: string;
  lastError?: string;
  retryInSeconds?: number;
  blockNumber?: number;
}

/** Advisory lock key held by the one process that anchors ("anchor" in ASCII). */
const ANCHOR_LOCK = 0x616e63686f72;

/**
 * Anchors the log's checkpoints on AuditAnchor and records each confirmed anchor as an ANCHORED entry.
 *
 * Every decision is taken from durable state (the `anchors` table, the contract, the log), so a restart
 * at any point resumes: an attempt is recorded before its transaction is sent; a checkpoint found on the
 * chain but not recorded is adopted; a reverted or dropped transaction is retried from what the contract
 * holds. The contract's compare-and-set on the old size means a size is never anchored twice. While the
 * chain is unreachable the log keeps accepting entries and the loop retries with exponential backoff.
 */
export class AnchoringLoop implements HealthReporter {
  readonly name = 'anchoring';
  private readonly logger = new Logger('Anchoring');
  private readonly anchors: Repository<AnchorRecordEntity>;
  private connection?: ChainConnection;
  private status: AnchoringStatus = { state: 'starting' };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private failures = 0;
  private lastAnchorAt = Date.now();
  private lockRunner?: ReturnType<DataSource['createQueryRunner']>;
  private wake?: () => void;

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly connect: ChainConnector,
    private readonly policy: AnchoringPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.anchors = dataSource.getRepository(AnchorRecordEntity);
  }

  report(): { ok: boolean; [detail: string]: unknown } {
    const ok = this.status.state === 'ok' || this.status.state === 'starting';
    return { ok, ...this.status };
  }

  getStatus(): AnchoringStatus {
    return { ...this.status };
  }

  /** The chain in use, once connected (for /v1/anchors). */
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
        blockNumber: await connection.provider.getBlockNumber(),
      };
    } catch {
      return undefined; // chain down: confirmations unknown
    }
  }

  /** Starts the loop in the background. Only one process per database anchors; the others stand by. */
  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.status = { ...this.status, state: 'stopped' };
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.running;
    if (this.lockRunner) {
      await this.lockRunner.release().catch(() => undefined);
    }
    await this.connection?.close();
  }

  /** Runs one pass now (tests and the benchmark use it to avoid waiting for the poll). */
  async tick(): Promise<void> {
    if (!this.connection) this.connection = await this.connect();
    const c = this.connection;
    const blockNumber = await c.provider.getBlockNumber();
    this.status = { ...this.status, chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, rpcUrl: c.rpcUrl, blockNumber };
    await this.detectReorgs(c);
    const inFlight = await this.anchors.findOne({ where: { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'sending' as const } })
      ?? (await this.anchors.findOne({ where: { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'sent' as const } }));
    if (inFlight) {
      await this.advance(c, inFlight);
    } else {
      await this.adoptUnrecorded(c);
      await this.maybeAnchor(c);
    }
    const latest = await this.latestConfirmed(c);
    const pending = await this.anchors.findOne({ where: [
      { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'sending' as const },
      { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'sent' as const },
    ] });
    this.status = {
      ...this.status,
      state: this.status.state === 'inconsistent' ? 'inconsistent' : 'ok',
      anchoredTreeSize: latest ? Number(latest.treeSize) : 0,
      pendingTreeSize: pending ? Number(pending.treeSize) : undefined,
      pendingTxHash: pending?.txHash ?? pending?.txHashes.at(-1),
      lastError: this.status.state === 'inconsistent' ? this.status.lastError : undefined,
      retryInSeconds: undefined,
    };
  }

  private async loop(): Promise<void> {
    if (!(await this.acquireLock())) {
      this.logger.log('another process holds the anchoring lock; this one stands by');
      while (!this.stopped && !(await this.acquireLock())) await this.sleep(5000);
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
    const backoff = Math.min(60_000, this.policy.pollMs * 2 ** Math.min(this.failures, 10));
    const chainDown = error instanceof ChainError && (error.code === 'RPC_UNAVAILABLE' || error.code === 'TIMEOUT');
    const state: AnchoringState = chainDown ? 'chain-unavailable' : error instanceof ChainError && error.code === 'NOT_ANCHORER' ? 'not-anchorer' : 'error';
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (this.failures === 1 || this.failures % 10 === 0 || state !== this.status.state)
      this.logger.warn(`${chainDown ? 'chain unavailable' : 'anchoring failed'}: ${message}; the log keeps accepting entries; retrying in ${Math.round(backoff / 1000)} s`);
    this.status = { ...this.status, state, lastError: message, retryInSeconds: Math.round(backoff / 1000) };
    if (chainDown && this.connection && !this.connection.local) {
      // Reconnect from scratch next time (a restarted node may be another process).
      void this.connection.close().catch(() => undefined);
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

  private async acquireLock(): Promise<boolean> {
    this.lockRunner ??= this.dataSource.createQueryRunner();
    const [{ locked }] = await this.lockRunner.query('SELECT pg_try_advisory_lock($1) AS locked', [ANCHOR_LOCK]);
    return locked === true;
  }

  private latestConfirmed(c: ChainConnection): Promise<AnchorRecordEntity | null> {
    return this.anchors.findOne({
      where: { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'confirmed' as const },
      order: { treeSize: 'DESC' },
    });
  }

  /** A confirmed anchor whose checkpoint is no longer on the chain was dropped by a reorg: anchor again. */
  private async detectReorgs(c: ChainConnection): Promise<void> {
    const recent = await this.anchors.find({
      where: { chainId: c.chainId, genesisHash: c.genesisHash, contract: c.contract, state: 'confirmed' as const },
      order: { treeSize: 'DESC' },
      take: 3,
    });
    for (const record of recent) {
      const onChain = await c.client.findCheckpointByTreeSize(Number(record.treeSize));
      if (onChain && onChain.rootHash === record.rootHash) continue;
      this.logger.warn(
        `a reorg removed the anchor of tree size ${record.treeSize} (tx ${record.txHash}); the checkpoint will be anchored again`,
      );
      await this.anchors.update(record.id, { state: 'dropped', error: 'removed from the chain by a reorg', updatedAt: new Date() });
    }
  }

  /** Moves an in-flight attempt on: confirm it, wait, replace it, or give it up. */
  private async advance(c: ChainConnection, record: AnchorRecordEntity): Promise<void> {
    const treeSize = Number(record.treeSize);
    if (record.state === 'sending') {
      // The process stopped between recording the attempt and recording its transaction.
      const onChain = await c.client.findCheckpointByTreeSize(treeSize);
      if (onChain) {
        const txHash = await this.findAnchorTransaction(c, onChain.number);
        await this.anchors.update(record.id, { state: 'sent', txHash, txHashes: txHash ? [txHash] : [], updatedAt: new Date() });
        return;
      }
      const nonce = await c.provider.getTransactionCount(c.signer.address, 'pending');
      if (record.nonce === null || nonce <= record.nonce) {
        await this.anchors.update(record.id, { state: 'dropped', error: 'never sent (the service stopped before sending)', updatedAt: new Date() });
      }
      return;
    }
    for (const txHash of [...record.txHashes].reverse()) {
      const state = await c.client.transactionState(txHash);
      if (state.status !== 'mined') continue;
      if (!state.succeeded) {
        let reason = 'reverted';
        try {
          await c.client.waitForAnchor(txHash, { confirmations: 1, timeoutMs: 5000 });
        } catch (error) {
          reason = error instanceof ChainError ? `${error.code}: ${error.message}` : String(error);
          if (error instanceof ChainError && error.code === 'INCONSISTENT_ROOT') this.alarm(`the contract refused root ${record.rootHash} at size ${treeSize} as inconsistent`);
        }
        this.logger.warn(`anchor of tree size ${treeSize} failed on-chain (${reason}); trying again from the contract's state`);
        await this.anchors.update(record.id, { state: 'failed', txHash, error: reason.slice(0, 1000), updatedAt: new Date() });
        return;
      }
      await this.anchors.update(record.id, { txHash, blockNumber: String(state.blockNumber), updatedAt: new Date() });
      if (state.confirmations < this.policy.confirmations) return; // wait for more blocks
      const receipt = await c.client.waitForAnchor(txHash, { confirmations: this.policy.confirmations, timeoutMs: 10_000 });
      await this.record(c, { ...record, txHash, blockNumber: String(receipt.blockNumber) }, receipt.blockNumber, txHash);
      return;
    }
    // Nothing mined yet.
    const last = record.txHashes.at(-1)!;
    const lastState = await c.client.transactionState(last);
    const ageSeconds = (this.now() - record.updatedAt.getTime()) / 1000;
    if (lastState.status === 'missing') {
      const onChain = await c.client.findCheckpointByTreeSize(treeSize);
      const minedNonce = await c.provider.getTransactionCount(c.signer.address, 'latest');
      if (onChain) {
        // Mined through a transaction we did not see (replaced by another sender of the same key).
        const txHash = await this.findAnchorTransaction(c, onChain.number);
        if (txHash) await this.anchors.update(record.id, { txHashes: [...record.txHashes, txHash], updatedAt: new Date() });
        return;
      }
      if (record.blockNumber !== null || (record.nonce !== null && minedNonce > record.nonce) || ageSeconds > 30) {
        this.logger.warn(`anchor transaction ${last} for tree size ${treeSize} disappeared (dropped or replaced); anchoring again`);
        await this.anchors.update(record.id, { state: 'dropped', error: 'transaction dropped', updatedAt: new Date() });
      }
      return;
    }
    if (lastState.status === 'pending' && ageSeconds > this.policy.replaceAfterSeconds && record.nonce !== null) {
      await this.replace(c, record);
    }
  }

  /** Sends the same anchor again with the same nonce and higher fees. */
  private async replace(c: ChainConnection, record: AnchorRecordEntity): Promise<void> {
    const fees = await c.provider.getFeeData();
    const bump = (v: bigint | null) => (v === null ? undefined : (v * 13n) / 10n + 1n);
    const oldSize = Number(record.oldSize);
    const treeSize = Number(record.treeSize);
    const proof = oldSize === 0 ? [] : (await this.ledger.getConsistencyProof(oldSize, treeSize)).proof;
    // The original is in the pending state, so a simulation would fail against it: reuse its gas limit.
    const original = await c.provider.getTransaction(record.txHashes.at(-1)!);
    const txHash = await c.client.anchor(oldSize, treeSize, record.rootHash, proof, {
      nonce: record.nonce!,
      gasLimit: original?.gasLimit ?? 500_000n,
      maxFeePerGas: bump(fees.maxFeePerGas),
      maxPriorityFeePerGas: bump(fees.maxPriorityFeePerGas),
    });
    this.logger.warn(`anchor of tree size ${treeSize} still pending; replaced it with ${txHash} (same nonce, higher fees)`);
    await this.anchors.update(record.id, { txHashes: [...record.txHashes, txHash], updatedAt: new Date() });
  }

  /** Appends ANCHORED for a confirmed anchor (once: it looks for an existing entry with the same tx first). */
  private async record(c: ChainConnection, record: AnchorRecordEntity, blockNumber: number, txHash: string): Promise<void> {
    const treeSize = Number(record.treeSize);
    const [existing] = await this.ledger.findEntries({ type: 'ANCHORED', fields: { txHash: txHash.toLowerCase() }, limit: 1 });
    let ledgerIndex: number;
    if (existing) {
      ledgerIndex = existing.index;
    } else {
      const event: Anchored = {
        type: 'ANCHORED',
        version: 1,
        chainId: c.chainId,
        contract: c.contract,
        txHash: txHash.toLowerCase(),
        blockNumber,
        treeSize,
        rootHash: record.rootHash,
      };
      ledgerIndex = (await this.ledger.appendOne(event)).index;
    }
    await this.anchors.update(record.id, {
      state: 'confirmed',
      txHash,
      blockNumber: String(blockNumber),
      ledgerIndex: String(ledgerIndex),
      error: null,
      updatedAt: new Date(),
    });
    this.lastAnchorAt = this.now();
    this.logger.log(`anchored tree size ${treeSize} root ${record.rootHash} in ${txHash} (block ${blockNumber}); logged at index ${ledgerIndex}`);
  }

  /** Checkpoints on the contract that the table does not hold as confirmed (a restart, another anchorer). */
  private async adoptUnrecorded(c: ChainConnection): Promise<void> {
    const count = await c.client.checkpointCount();
    if (count === 0) return;
    const latest = await c.client.checkpoint(count - 1);
    const known = await this.latestConfirmed(c);
    if (known && Number(known.treeSize) === latest.treeSize) return;
    const { treeSize: logSize } = await this.ledger.getCheckpoint();
    if (latest.treeSize > logSize || (await this.ledger.getRoot(latest.treeSize)) !== latest.rootHash) {
      this.alarm(
        `the chain's checkpoint ${latest.number} (size ${latest.treeSize}, root ${latest.rootHash}) is not a state of this log (size ${logSize})`,
      );
      return;
    }
    const txHash = await this.findAnchorTransaction(c, latest.number);
    if (!txHash) return;
    const receipt = await c.client.waitForAnchor(txHash, { confirmations: this.policy.confirmations, timeoutMs: 10_000 });
    const saved = await this.anchors.save(
      this.anchors.create({
        chainId: c.chainId,
        genesisHash: c.genesisHash,
        contract: c.contract,
        treeSize: String(latest.treeSize),
        oldSize: String(receipt.checkpoint.oldSize),
        rootHash: latest.rootHash,
        state: 'sent',
        txHashes: [txHash],
        txHash,
      }),
    );
    this.logger.log(`found the anchor of tree size ${latest.treeSize} on the chain (tx ${txHash}) without a record; recording it`);
    await this.record(c, saved, receipt.blockNumber, txHash);
  }

  /** The transaction that anchored checkpoint `number`, from the contract's CheckpointAnchored events (scanned in bounded ranges). */
  private async findAnchorTransaction(c: ChainConnection, number: number): Promise<string | null> {
    return (await c.client.findCheckpointEvent(number))?.txHash ?? null;
  }

  private alarm(message: string): void {
    if (this.status.state !== 'inconsistent') this.logger.error(`${message}: anchoring stops until this is resolved`);
    this.status = { ...this.status, state: 'inconsistent', lastError: message };
  }

  /** Sends an anchor of the log's current size when the policy says so. */
  private async maybeAnchor(c: ChainConnection): Promise<void> {
    if (this.status.state === 'inconsistent') return;
    const onChain = await c.client.latestCheckpoint();
    const oldSize = onChain?.treeSize ?? 0;
    const { treeSize: newSize } = await this.ledger.getCheckpoint();
    if (newSize <= oldSize) return;
    if (onChain && (await this.ledger.getRoot(oldSize)) !== onChain.rootHash) {
      this.alarm(`the chain's latest root at size ${oldSize} is not this log's root at that size`);
      return;
    }
    // Counted up to the threshold only: after a long outage the log may be far ahead.
    const waiting = await this.ledger.countEntries({ start: oldSize, except: ['ANCHORED'], atMost: this.policy.everyEntries });
    if (waiting === 0) return; // only our own ANCHORED entries since: nothing new to anchor
    const due = waiting >= this.policy.everyEntries || this.now() - this.lastAnchorAt >= this.policy.everySeconds * 1000;
    if (!due) return;

    const rootHash = await this.ledger.getRoot(newSize);
    const proof = oldSize === 0 ? [] : (await this.ledger.getConsistencyProof(oldSize, newSize)).proof;
    const nonce = await c.provider.getTransactionCount(c.signer.address, 'pending');
    const saved = await this.anchors.save(
      this.anchors.create({
        chainId: c.chainId,
        genesisHash: c.genesisHash,
        contract: c.contract,
        treeSize: String(newSize),
        oldSize: String(oldSize),
        rootHash,
        state: 'sending',
        nonce,
      }),
    );
    let txHash: string;
    try {
      txHash = await c.client.anchor(oldSize, newSize, rootHash, proof, { nonce });
    } catch (error) {
      const reason = error instanceof ChainError ? `${error.code}: ${error.message}` : String(error);
      await this.anchors.update(saved.id, { state: 'failed', error: reason.slice(0, 1000), updatedAt: new Date() });
      if (error instanceof ChainError && error.code === 'INCONSISTENT_ROOT') this.alarm(`the contract refused root ${rootHash} at size ${newSize}`);
      throw error;
    }
    await this.anchors.update(saved.id, { state: 'sent', txHashes: [txHash], updatedAt: new Date() });
    this.logger.log(`sent anchor of tree size ${oldSize} -> ${newSize} root ${rootHash}: ${txHash}`);
  }
}
