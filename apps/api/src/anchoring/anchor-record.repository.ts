import { DataSource, QueryRunner, Repository } from 'typeorm';
import type { AnchorAttempt, AnchorAttemptChange, AnchorAttemptStore, AnchoringLock, ChainKey, NewAnchorAttempt } from '@lethe/chain';
import { AnchorRecordEntity } from './anchor-record.entity';

/** The anchoring engine's attempts in the `anchors` table (sizes and blocks are bigint columns, read as text). */
export class AnchorRecordRepository implements AnchorAttemptStore {
  private readonly records: Repository<AnchorRecordEntity>;

  constructor(dataSource: DataSource) {
    this.records = dataSource.getRepository(AnchorRecordEntity);
  }

  async findInFlight(chain: ChainKey): Promise<AnchorAttempt | null> {
    const record =
      (await this.records.findOne({ where: { ...keyOf(chain), state: 'sending' as const } })) ??
      (await this.records.findOne({ where: { ...keyOf(chain), state: 'sent' as const } }));
    return record && toAttempt(record);
  }

  async findConfirmed(chain: ChainKey, limit: number): Promise<AnchorAttempt[]> {
    const records = await this.records.find({ where: { ...keyOf(chain), state: 'confirmed' as const }, order: { treeSize: 'DESC' }, take: limit });
    return records.map(toAttempt);
  }

  async create(chain: ChainKey, attempt: NewAnchorAttempt): Promise<AnchorAttempt> {
    const saved = await this.records.save(
      this.records.create({
        ...keyOf(chain),
        treeSize: String(attempt.treeSize),
        oldSize: String(attempt.oldSize),
        rootHash: attempt.rootHash,
        state: attempt.state,
        txHashes: attempt.txHashes ?? [],
        txHash: attempt.txHash ?? null,
        nonce: attempt.nonce ?? null,
        updatedAt: new Date(),
      }),
    );
    return toAttempt(saved);
  }

  async update(id: string, change: AnchorAttemptChange): Promise<void> {
    const { blockNumber, ledgerIndex, ...rest } = change;
    await this.records.update(id, {
      ...rest,
      ...(blockNumber === undefined ? {} : { blockNumber: blockNumber === null ? null : String(blockNumber) }),
      ...(ledgerIndex === undefined ? {} : { ledgerIndex: String(ledgerIndex) }),
      updatedAt: new Date(),
    });
  }
}

/**
 * A PostgreSQL session-level advisory lock on a connection of its own: the one process per database that
 * holds it anchors, the others stand by.
 */
export class AdvisoryLock implements AnchoringLock {
  private runner?: QueryRunner;
  private held = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: number,
  ) {}

  async tryAcquire(): Promise<boolean> {
    this.runner ??= this.dataSource.createQueryRunner();
    const [{ locked }] = await this.runner.query('SELECT pg_try_advisory_lock($1) AS locked', [this.key]);
    this.held ||= locked === true;
    return locked === true;
  }

  async release(): Promise<void> {
    const runner = this.runner;
    if (!runner) return;
    this.runner = undefined;
    try {
      if (this.held) await runner.query('SELECT pg_advisory_unlock($1)', [this.key]);
    } finally {
      this.held = false;
      await runner.release();
    }
  }
}

function keyOf(chain: ChainKey): ChainKey {
  return { chainId: chain.chainId, genesisHash: chain.genesisHash, contract: chain.contract };
}

function toAttempt(record: AnchorRecordEntity): AnchorAttempt {
  return {
    id: record.id,
    treeSize: Number(record.treeSize),
    oldSize: Number(record.oldSize),
    rootHash: record.rootHash,
    state: record.state,
    txHashes: record.txHashes,
    txHash: record.txHash,
    nonce: record.nonce,
    blockNumber: record.blockNumber === null ? null : Number(record.blockNumber),
    updatedAt: record.updatedAt,
  };
}
