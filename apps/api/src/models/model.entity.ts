import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { GuardFigures, UnlearnGuarantee } from '@lethe/events';
import type { JsonValue } from '@lethe/unlearning';

export const MODEL_STATES = ['training', 'ready', 'failed'] as const;
export type ModelState = (typeof MODEL_STATES)[number];

@Entity({ name: 'models' })
export class ModelEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId!: string;

  /** The configuration as the client gave it (POST /v1/models). */
  @Column({ type: 'jsonb' })
  config!: Record<string, unknown>;

  /** The same as the engine's TrainingConfigInput (numFeatures and numClasses from the dataset). */
  @Column({ name: 'engine_config', type: 'jsonb' })
  engineConfig!: Record<string, unknown>;

  /** The data key (in the key store) its noise seeds are sealed under; null for a model without noise. */
  @Column({ name: 'noise_key_id', type: 'text', nullable: true })
  noiseKeyId!: string | null;

  /** privacy.noiseSeed and certified.noiseSeed, sealed (noise-seeds.ts); engine_config holds the settings without them. */
  @Column({ name: 'noise_seeds', type: 'bytea', nullable: true })
  noiseSeeds!: Buffer | null;

  @Column({ type: 'text' })
  state!: ModelState;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ name: 'job_id', type: 'uuid' })
  jobId!: string;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  /** When POST /v1/models/:id/learn asked for the samples uploaded since its last version (cleared once learned). */
  @Column({ name: 'learn_requested_at', type: 'timestamptz', nullable: true })
  learnRequestedAt!: Date | null;
  /** The version a rollback made current (null: the latest is); a version published since clears it. */
  @Column({ name: 'current_version', type: 'integer', nullable: true })
  currentVersion!: number | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}

/**
 * The guard's figures (UNLEARN_HELD, LEARN_HELD): test accuracy before and after, the drop and the model's limit; for a
 * version made by learning (LEARN_HELD) also its cause and the version it extends.
 */
export interface HeldFigures extends GuardFigures {
  cause?: 'learn' | 'restore';
  fromVersion?: number;
}

/** A version is held until released: served only when asked for by number. */
export function isHeld(row: Pick<ModelVersionEntity, 'heldLedgerIndex' | 'releasedLedgerIndex'>): boolean {
  return row.heldLedgerIndex !== null && row.releasedLedgerIndex === null;
}

@Entity({ name: 'model_versions' })
export class ModelVersionEntity {
  @PrimaryColumn({ name: 'model_id', type: 'uuid' })
  modelId!: string;

  @PrimaryColumn({ type: 'integer' })
  version!: number;

  @Column({ name: 'onnx_sha256', type: 'text' })
  onnxSha256!: string;

  @Column({ name: 'manifest_hash', type: 'text' })
  manifestHash!: string;

  @Column({ type: 'jsonb' })
  metrics!: { [key: string]: JsonValue };

  @Column({ name: 'ledger_index', type: 'bigint' })
  ledgerIndex!: string;

  @Column({ name: 'unlearn_ledger_index', type: 'bigint', nullable: true })
  unlearnLedgerIndex!: string | null;

  @Column({ name: 'reflects_forget_requests', type: 'uuid', array: true })
  reflectsForgetRequests!: string[];

  @Column({ type: 'jsonb', nullable: true })
  evidence!: { [key: string]: JsonValue } | null;

  /** The EVIDENCE_RECORDED entry of a version published before its evidence (null until it is recorded). */
  @Column({ name: 'evidence_ledger_index', type: 'bigint', nullable: true })
  evidenceLedgerIndex!: string | null;

  /** Its UNLEARN_COMPLETED.guarantee (versions made by unlearning; null for trained ones and those from before it). */
  @Column({ type: 'jsonb', nullable: true })
  guarantee!: UnlearnGuarantee | null;

  /** For a version made by forgetting, whether its rows in model_version_samples are still owed (written after it is served). */
  @Column({ name: 'samples_pending', type: 'boolean', default: false })
  samplesPending!: boolean;

  /**
   * For a version made by forgetting, the batches (batchKey -> BATCH_LEARNED index) whose members are not in
   * batch_commitments yet: written after the version is served; null once they are (and for other versions).
   */
  @Column({ name: 'batches_pending', type: 'jsonb', nullable: true })
  batchesPending!: { [batch: string]: number } | null;

  /** Shards, checkpoints and manifest: what the engine needs to forget from this version. */
  @Column({ name: 'engine_state', type: 'jsonb' })
  engineState!: Record<string, unknown>;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  /** Set once the version is retired: it learned samples of the forget requests `retiredBy` and is never served again. */
  @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;

  @Column({ name: 'retired_by', type: 'uuid', array: true })
  retiredBy!: string[];

  /** The catastrophic-forgetting guard's figures when it held the version (UNLEARN_HELD); null otherwise. */
  @Column({ type: 'jsonb', nullable: true })
  held!: HeldFigures | null;

  /** The UNLEARN_HELD entry of a held version. */
  @Column({ name: 'held_ledger_index', type: 'bigint', nullable: true })
  heldLedgerIndex!: string | null;

  /** The VERSION_RELEASED entry, once a held version is released. */
  @Column({ name: 'released_ledger_index', type: 'bigint', nullable: true })
  releasedLedgerIndex!: string | null;

  /** The VERSION_RETIRED entry, once logged. */
  @Column({ name: 'retire_ledger_index', type: 'bigint', nullable: true })
  retireLedgerIndex!: string | null;
}
