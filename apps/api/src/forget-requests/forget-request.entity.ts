import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ApproximateAlgorithm, ShredCause } from '@lethe/events';

/**
 * received -> unlearning -> completed | failed (failed -> unlearning to retry); mode 'suspend': unlearning -> suspended
 * -> restoring -> restored, or suspended -> completed (shredded). The table's trigger enforces it.
 */
export const FORGET_REQUEST_STATES = ['received', 'unlearning', 'completed', 'failed', 'suspended', 'restoring', 'restored'] as const;
export type ForgetRequestState = (typeof FORGET_REQUEST_STATES)[number];

export const FORGET_MODES = ['forget', 'suspend'] as const;
export type ForgetMode = (typeof FORGET_MODES)[number];

/** How a request asked to be unlearned, when not exactly: approximately, then (unless `then` is 'none') exactly. */
export interface ForgetApproach {
  approach: 'approximate';
  algorithm: ApproximateAlgorithm;
  then: 'exact' | 'none';
}

@Entity({ name: 'forget_requests' })
export class ForgetRequestEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId!: string;

  @Column({ type: 'text' })
  reason!: string;

  @Column({ type: 'text' })
  state!: ForgetRequestState;

  /** The FORGET_REQUESTED entry; null until it is durable. */
  @Column({ name: 'ledger_index', type: 'bigint', nullable: true })
  ledgerIndex!: string | null;

  @Column({ name: 'leaf_hash', type: 'text', nullable: true })
  leafHash!: string | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  /** Null: exact unlearning. */
  @Column({ type: 'jsonb', nullable: true })
  approach!: ForgetApproach | null;

  /** 'forget' (erased once unlearned) or 'suspend' (unlearned, its data kept sealed for grace_days, then shredded unless restored). */
  @Column({ type: 'text', default: 'forget' })
  mode!: ForgetMode;

  @Column({ name: 'grace_days', type: 'double precision', nullable: true })
  graceDays!: number | null;

  /** When a suspended request's keys are destroyed unless it is restored first (set once suspended). */
  @Column({ type: 'timestamptz', nullable: true })
  deadline!: Date | null;

  /** The FORGET_SUSPENDED, FORGET_RESTORED and FORGET_SHREDDED entries, once logged. */
  @Column({ name: 'suspend_ledger_index', type: 'bigint', nullable: true })
  suspendLedgerIndex!: string | null;

  @Column({ name: 'restore_ledger_index', type: 'bigint', nullable: true })
  restoreLedgerIndex!: string | null;

  @Column({ name: 'shred_ledger_index', type: 'bigint', nullable: true })
  shredLedgerIndex!: string | null;

  @Column({ name: 'shred_cause', type: 'text', nullable: true })
  shredCause!: ShredCause | null;

  /** Feature-level unlearning: the columns to stop reading (ascending); null for a forget of samples. */
  @Column({ type: 'integer', array: true, nullable: true })
  features!: number[] | null;

  /** The unlearning pass (a row in `jobs`) that serves it: the dataset's waiting one, then the one that took it. */
  @Column({ name: 'job_id', type: 'uuid', nullable: true })
  jobId!: string | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  /** The deadline after an extension (FORGET_EXTENDED), its reason and entry; null when not extended. */
  @Column({ name: 'extended_deadline', type: 'timestamptz', nullable: true })
  extendedDeadline!: Date | null;

  @Column({ name: 'extension_reason', type: 'text', nullable: true })
  extensionReason!: string | null;

  @Column({ name: 'extend_ledger_index', type: 'bigint', nullable: true })
  extendLedgerIndex!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
