import { Column, Entity, PrimaryColumn } from 'typeorm';

export const JOB_STATES = ['queued', 'running', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** pg-boss job names (queues). */
export const TRAIN_JOB = 'lethe.train';
/** An unlearning pass over one dataset: every forget request of it that waits, served together. */
export const UNLEARN_JOB = 'lethe.unlearn';
/** A bias scan of one model version (POST /v1/models/:id/bias-scan): its result ranks samples by commitment. */
export const BIAS_SCAN_JOB = 'lethe.bias-scan';
export const JOB_TYPES = [TRAIN_JOB, UNLEARN_JOB, BIAS_SCAN_JOB] as const;
/**
 * One shard of a version that a training or an unlearning pass trains: a message of its own for each
 * (job_tasks), so that the shards of one job train on several workers at once. Not a job of the `jobs` table.
 */
export const SHARD_JOB = 'lethe.shard';
export type JobType = (typeof JOB_TYPES)[number];

@Entity({ name: 'jobs' })
export class JobEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ type: 'text' })
  type!: JobType;

  @Column({ type: 'text' })
  state!: JobState;

  @Column({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Column({ type: 'double precision' })
  progress!: number;

  @Column({ name: 'eta_seconds', type: 'double precision', nullable: true })
  etaSeconds!: number | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  result!: Record<string, unknown> | null;

  @Column({ type: 'integer' })
  attempts!: number;

  @Column({ name: 'worker_id', type: 'text', nullable: true })
  workerId!: string | null;

  @Column({ name: 'heartbeat_at', type: 'timestamptz', nullable: true })
  heartbeatAt!: Date | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
