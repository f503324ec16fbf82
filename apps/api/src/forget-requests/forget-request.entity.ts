import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ApproximateAlgorithm } from '@lethe/events';

/** received -> unlearning -> completed | failed (failed -> unlearning to retry); the table's trigger enforces it. */
export const FORGET_REQUEST_STATES = ['received', 'unlearning', 'completed', 'failed'] as const;
export type ForgetRequestState = (typeof FORGET_REQUEST_STATES)[number];

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

  /** The unlearning pass (a row in `jobs`) that serves it: the dataset's waiting one, then the one that took it. */
  @Column({ name: 'job_id', type: 'uuid', nullable: true })
  jobId!: string | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
