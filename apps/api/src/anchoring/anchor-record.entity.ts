import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { AnchorAttemptState } from '@lethe/chain';

/**
 * One attempt to anchor a checkpoint on one contract: written before the transaction is sent (state
 * `sending`), so that a restart between sending and confirming finds it and finishes the job.
 */
@Entity({ name: 'anchors' })
export class AnchorRecordEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ name: 'chain_id', type: 'text' })
  chainId!: string;

  /** Hash of the chain's block 0: two chains may share a chain id (a restarted local Hardhat node). */
  @Column({ name: 'genesis_hash', type: 'text' })
  genesisHash!: string;

  /** Lowercase 0x address of the AuditAnchor contract. */
  @Column({ type: 'text' })
  contract!: string;

  @Column({ name: 'tree_size', type: 'bigint' })
  treeSize!: string;

  @Column({ name: 'old_size', type: 'bigint' })
  oldSize!: string;

  @Column({ name: 'root_hash', type: 'text' })
  rootHash!: string;

  @Column({ type: 'text' })
  state!: AnchorAttemptState;

  /** Every transaction sent for this attempt (replacements included), latest last. */
  @Column({ name: 'tx_hashes', type: 'text', array: true, default: () => "'{}'" })
  txHashes!: string[];

  /** The transaction that anchored it, once mined. */
  @Column({ name: 'tx_hash', type: 'text', nullable: true })
  txHash!: string | null;

  @Column({ type: 'integer', nullable: true })
  nonce!: number | null;

  @Column({ name: 'block_number', type: 'bigint', nullable: true })
  blockNumber!: string | null;

  /** Index of the ANCHORED entry that recorded it in the log. */
  @Column({ name: 'ledger_index', type: 'bigint', nullable: true })
  ledgerIndex!: string | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
