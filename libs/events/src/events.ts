import { LedgerError } from './errors';
import { checkMembershipEvidence } from './membership-evidence';
import { RUNTIME_ENVELOPE_FIELDS, type RuntimeEnvelope } from './runtime-envelope';

/** Every kind of entry in the log. The list only grows; a type's fields change only with its `version`. */
export const LEDGER_EVENT_TYPES = [
  'DATASET_REGISTERED',
  'SAMPLES_COMMITTED',
  'BATCH_LEARNED',
  'CHECKPOINT_SAVED',
  'MODEL_PUBLISHED',
  'FORGET_REQUESTED',
  'UNLEARN_COMPLETED',
  'ANCHORED',
  'VERSION_RETIRED',
  'CHECKPOINTS_DELETED',
  'EVIDENCE_RECORDED',
  'FORGET_SUSPENDED',
  'FORGET_RESTORED',
  'FORGET_SHREDDED',
  'DATASET_VERSIONED',
  'MODEL_ROLLED_BACK',
  'UNLEARN_HELD',
  'VERSION_RELEASED',
  'FORGET_EXTENDED',
  'LEARN_HELD',
  'BIAS_SCANNED',
] as const;
export type LedgerEventType = (typeof LEDGER_EVENT_TYPES)[number];

/** A JSON value as RFC 8785 can encode it (no undefined, no bigint, finite numbers). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

interface EventBase<T extends LedgerEventType> {
  type: T;
  version: 1;
}

type Hex = string;

export interface DatasetRegistered extends EventBase<'DATASET_REGISTERED'> {
  datasetId: string;
  name: string;
  features: number;
  classes: number;
  /** Days each sample is kept after its upload (absent: kept until forgotten; entries written before it was recorded have none). */
  retentionDays?: number;
  /** The column holding a protected group id (fairness figures and bias scans use it); absent when none was declared. */
  protectedFeature?: number;
}
export interface SamplesCommitted extends EventBase<'SAMPLES_COMMITTED'> {
  datasetId: string;
  /** RFC 9162 root over the leaves hashLeaf(commitment), in upload order. */
  commitmentsRoot: Hex;
  count: number;
}
export interface BatchLearned extends EventBase<'BATCH_LEARNED'> {
  modelId: string;
  modelVersion: number;
  shard: number;
  slice: number;
  batchRoot: Hex;
  count: number;
  parentCheckpoint: Hex | null;
  checkpoint: Hex;
  hyperparamsHash: Hex;
  /**
   * On an appended slice (slice >= R): the learn batch b >= 1 whose samples it holds (slice = R - 1 + b); its
   * batchRoot is the root of the commitments that learn appended to this shard, in rank order. Absent on the R
   * slices of the first training.
   */
  learnBatch?: number;
}
export interface CheckpointSaved extends EventBase<'CHECKPOINT_SAVED'> {
  modelId: string;
  shard: number;
  slice: number;
  checkpoint: Hex;
  /** Size and SHA-256 of the checkpoint's bytes (the unlearning engine records them). */
  bytes?: number;
  weightsSha256?: Hex;
}
export interface ModelPublished extends EventBase<'MODEL_PUBLISHED'> {
  modelId: string;
  modelVersion: number;
  onnxSha256: Hex;
  manifestHash: Hex;
  metrics: { [key: string]: JsonValue };
  /** The envelope of the process that trained and published this version (absent in entries written before it was recorded). */
  runtime?: RuntimeEnvelope;
  /** A differentially private version's guarantee (DP-SGD); absent for a model trained without privacy. */
  privacy?: PrivacyGuarantee;
}

/**
 * MODEL_PUBLISHED.privacy: the version is (epsilon, delta)-DP for every sample, by `accountant`, for `steps` steps
 * of the Poisson-subsampled Gaussian mechanism (sampleRate, noiseMultiplier) with per-example gradients clipped
 * to clipNorm. In a SISA ensemble each sample is in one shard's data only: the guarantee is a shard model's.
 */
export interface PrivacyGuarantee {
  mechanism: 'dp-sgd';
  epsilon: number;
  delta: number;
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
  clipNorm: number;
  accountant: string;
}
export interface ForgetRequested extends EventBase<'FORGET_REQUESTED'> {
  requestId: string;
  datasetId: string;
  commitments: Hex[];
  reason: string;
  /**
   * Feature-level unlearning: the input columns (indexes, ascending, distinct) every model of the dataset must
   * stop reading; `commitments` is then empty. Absent for a forget of samples.
   */
  features?: number[];
}
export interface UnlearnCompleted extends EventBase<'UNLEARN_COMPLETED'> {
  modelId: string;
  requestIds: string[];
  /** Shards retrained and the first slice retrained in each (SISA). */
  affected?: { shard: number; fromSlice: number }[];
  oldOnnxSha256: Hex;
  newOnnxSha256: Hex;
  modelVersion: number;
  /**
   * Accuracies before and after, a reference's, and `membership` (MembershipEvidence) when the attack was asked
   * for. A version published before its evidence was measured has only the counts here and `recordedIn:
   * 'EVIDENCE_RECORDED'`: the evidence follows in that entry.
   */
  evidence: { [key: string]: JsonValue };
  /** What the new version promises about the forgotten samples (absent in entries written before it was recorded: those were exact). */
  guarantee?: UnlearnGuarantee;
  /** Feature-level unlearning: every column the new version no longer reads (those of its requests and any masked before), ascending. */
  features?: number[];
}
/**
 * The evidence of an unlearning step, measured after its version was published (and its predecessors retired):
 * the same fields as UNLEARN_COMPLETED.evidence (accuracies before and after, a reference's, `membership`).
 */
export interface EvidenceRecorded extends EventBase<'EVIDENCE_RECORDED'> {
  modelId: string;
  /** The version whose UNLEARN_COMPLETED this evidence belongs to. */
  modelVersion: number;
  /** That UNLEARN_COMPLETED's requestIds (at least one). */
  forgetRequestIds: string[];
  evidence: { [key: string]: JsonValue };
}
/**
 * A model version that learned samples of the named forget requests is withdrawn: its ONNX file is deleted and
 * it is never served again. `modelVersion`, not `version`: `version` is every event's schema version.
 */
export interface VersionRetired extends EventBase<'VERSION_RETIRED'> {
  modelId: string;
  modelVersion: number;
  /** The retired file's SHA-256, as its MODEL_PUBLISHED entry has it. */
  onnxSha256: Hex;
  /** The forget requests whose samples the version learned, in log order (at least one). */
  forgetRequestIds: string[];
}
/**
 * Checkpoints (content addresses) of a model that no live version needs any more are deleted: each learned a
 * sample of the named forget requests, or lay on a lineage only retired versions used.
 */
export interface CheckpointsDeleted extends EventBase<'CHECKPOINTS_DELETED'> {
  modelId: string;
  /** Content addresses, sorted, at least one. */
  checkpoints: Hex[];
  /** The forget requests whose retirements left them unneeded (at least one). */
  forgetRequestIds: string[];
}
/**
 * A forget request of mode 'suspend' is served: every model that learned its samples has a version without them
 * (UNLEARN_COMPLETED, the old versions retired), but their sealed data and keys are kept until `deadline` (ISO-8601,
 * UTC), `graceDays` after this entry; then, or on request, FORGET_SHREDDED destroys the keys, unless
 * FORGET_RESTORED learned them again first.
 */
export interface ForgetSuspended extends EventBase<'FORGET_SUSPENDED'> {
  requestId: string;
  datasetId: string;
  graceDays: number;
  deadline: string;
}
/**
 * A suspended forget request is undone: its samples are learned again, and each model that forgot them has the
 * version listed (its MODEL_PUBLISHED and BATCH_LEARNED entries before this one). When nothing else changed
 * meanwhile, each version's ONNX file is byte for byte the one published before the suspension.
 */
export interface ForgetRestored extends EventBase<'FORGET_RESTORED'> {
  requestId: string;
  datasetId: string;
  modelVersions: { modelId: string; modelVersion: number; onnxSha256: Hex }[];
}
/** A suspended forget request ends as an erasure: the samples' data keys are destroyed (`cause`: asked for, or the grace period ended). */
export interface ForgetShredded extends EventBase<'FORGET_SHREDDED'> {
  requestId: string;
  datasetId: string;
  cause: ShredCause;
  /** Data keys destroyed by this step (a subject with samples left is sealed again under a fresh key instead). */
  keysDestroyed: number;
}
export const SHRED_CAUSES = ['requested', 'grace-expired'] as const;
export type ShredCause = (typeof SHRED_CAUSES)[number];

/**
 * A dataset changed (an upload, a forget, an erasure): its live samples' commitments (committed, not forgotten), in
 * upload order, have the RFC 9162 root `root` over the leaves hashLeaf(commitment), and there are `size` of them.
 * `datasetVersion`, not `version`: `version` is every event's schema version. Versions count from 1, one per change.
 */
export interface DatasetVersioned extends EventBase<'DATASET_VERSIONED'> {
  datasetId: string;
  datasetVersion: number;
  root: Hex;
  size: number;
}
/** An earlier, live version of a model is served again instead of `fromVersion` (never a retired one). */
export interface ModelRolledBack extends EventBase<'MODEL_ROLLED_BACK'> {
  modelId: string;
  fromVersion: number;
  toVersion: number;
}
/**
 * Why the catastrophic-forgetting guard held a version (UNLEARN_HELD, LEARN_HELD): its test accuracy fell from
 * `testAccuracyBefore` to `testAccuracyAfter`, a drop of `drop`, more than the model's `maxTestAccuracyDrop`
 * (checked: a version is held only then).
 */
export interface GuardFigures {
  testAccuracyBefore: number;
  testAccuracyAfter: number;
  drop: number;
  maxTestAccuracyDrop: number;
}
/**
 * The catastrophic-forgetting guard held a version made by unlearning: its test accuracy fell from
 * `testAccuracyBefore` to `testAccuracyAfter`, a drop of `drop`, more than the model's `maxTestAccuracyDrop`. The
 * forget counts (the versions that learned the samples are retired); the version is served only once released.
 */
export interface UnlearnHeld extends EventBase<'UNLEARN_HELD'>, GuardFigures {
  modelId: string;
  modelVersion: number;
  requestIds: string[];
}
/**
 * The catastrophic-forgetting guard held a version made by learning: online learning's appended batch (`cause:
 * 'learn'`, `learnBatch`) or a suspended forget restored (`cause: 'restore'`, `requestIds`). Its test accuracy on the
 * model's holdout fell from `testAccuracyBefore` (version `fromVersion`, the one it extends, measured on the same
 * holdout) to `testAccuracyAfter`, more than `maxTestAccuracyDrop`; it is served only once released (VERSION_RELEASED).
 * Not an UNLEARN_HELD: a learn serves no forget request, and UNLEARN_HELD names at least one.
 */
export interface LearnHeld extends EventBase<'LEARN_HELD'>, GuardFigures {
  modelId: string;
  modelVersion: number;
  fromVersion: number;
  cause: LearnHeldCause;
  /** cause 'learn': the learn batch the version appended. */
  learnBatch?: number;
  /** cause 'restore': the suspended forget requests learned again. */
  requestIds?: string[];
}
export const LEARN_HELD_CAUSES = ['learn', 'restore'] as const;
export type LearnHeldCause = (typeof LEARN_HELD_CAUSES)[number];
/** A held version is released: from now on it is served without being asked for by number. */
export interface VersionReleased extends EventBase<'VERSION_RELEASED'> {
  modelId: string;
  modelVersion: number;
}
/** A forget request cannot finish within the legal month: its deadline moves to `newDeadline` (ISO 8601), for `reason`. */
export interface ForgetExtended extends EventBase<'FORGET_EXTENDED'> {
  requestId: string;
  reason: string;
  newDeadline: string;
}

/** How a bias scan ranked the training samples (BIAS_SCANNED.method). */
export const BIAS_SCAN_METHODS = ['influence-functions', 'leave-one-slice-out'] as const;
export type BiasScanMethod = (typeof BIAS_SCAN_METHODS)[number];

/**
 * A bias scan of a model version finished (POST /v1/models/:id/bias-scan, job `jobId`): `method` ranked its
 * training samples by their influence on the gap `metric` between the protected groups on the holdout, which was
 * `gapBefore`; `candidates` samples were ranked, and `candidatesRoot` is the RFC 9162 root of their commitments in
 * rank order (never their externalIds: those are private, and only the ML team's route opens them).
 */
export interface BiasScanned extends EventBase<'BIAS_SCANNED'> {
  jobId: string;
  modelId: string;
  modelVersion: number;
  method: BiasScanMethod;
  metric: string;
  gapBefore: number;
  candidates: number;
  candidatesRoot: Hex;
}

/** The approximate unlearning algorithms (UnlearnGuarantee of kind 'approximate'). */
export const APPROXIMATE_ALGORITHMS = ['finetune', 'neggrad+', 'scrub'] as const;
export type ApproximateAlgorithm = (typeof APPROXIMATE_ALGORITHMS)[number];

/**
 * UNLEARN_COMPLETED.guarantee:
 * - exact: the new version is, bit for bit, what training from scratch without the samples gives (SISA, full retraining);
 * - certified: certified removal (Guo et al. 2020): the version is (epsilon, delta)-indistinguishable from one trained
 *   without the samples while the accumulated gradient-residual bound `budgetUsed` (this removal's `residualBound`
 *   included) stays within `budget` = sigma epsilon / sqrt(2 ln(1.5 / delta)); `retrained`: the removal would have
 *   exceeded it, so the model was trained again from scratch (and `budgetUsed` restarts);
 * - approximate: `steps` optimizer steps of `algorithm` from the previous version; no guarantee, only evidence.
 */
export type UnlearnGuarantee =
  | { kind: 'exact' }
  | { kind: 'certified'; epsilon: number; delta: number; residualBound: number; budget: number; budgetUsed: number; retrained: boolean }
  | { kind: 'approximate'; algorithm: ApproximateAlgorithm; steps: number };
export interface Anchored extends EventBase<'ANCHORED'> {
  chainId: string;
  contract: Hex;
  txHash: Hex;
  blockNumber: number;
  treeSize: number;
  rootHash: Hex;
}

export type LedgerEvent =
  | DatasetRegistered
  | SamplesCommitted
  | BatchLearned
  | CheckpointSaved
  | ModelPublished
  | ForgetRequested
  | UnlearnCompleted
  | Anchored
  | VersionRetired
  | CheckpointsDeleted
  | EvidenceRecorded
  | ForgetSuspended
  | ForgetRestored
  | ForgetShredded
  | DatasetVersioned
  | ModelRolledBack
  | UnlearnHeld
  | VersionReleased
  | ForgetExtended
  | LearnHeld
  | BiasScanned;

type FieldKind =
  | 'string'
  | 'hex32'
  | 'hex20'
  | 'hex32|null'
  | 'count'
  | 'hex32[]'
  | 'hex32[]+'
  | 'string[]'
  | 'string[]+'
  | 'object'
  | 'envelope'
  | 'privacy'
  | 'guarantee'
  | 'positive'
  | 'isoTime'
  | 'shredCause'
  | 'modelVersions'
  | 'fraction'
  | 'columns'
  | 'learnCause'
  | 'finite'
  | 'biasScanMethod';


/** The guard's figures, which both held events carry (GuardFigures; checkLifecycleEvent adds drop > limit). */
const GUARD_FIGURES: Record<keyof GuardFigures, FieldKind> = {
  testAccuracyBefore: 'fraction',
  testAccuracyAfter: 'fraction',
  drop: 'fraction',
  maxTestAccuracyDrop: 'fraction',
};

/** The fields each type must carry (more may follow; later issues add them). */
const REQUIRED_FIELDS: Record<LedgerEventType, Record<string, FieldKind>> = {
  DATASET_REGISTERED: { datasetId: 'string', name: 'string', features: 'count', classes: 'count' },
  SAMPLES_COMMITTED: { datasetId: 'string', commitmentsRoot: 'hex32', count: 'count' },
  BATCH_LEARNED: {
    modelId: 'string',
    modelVersion: 'count',
    shard: 'count',
    slice: 'count',
    batchRoot: 'hex32',
    count: 'count',
    parentCheckpoint: 'hex32|null',
    checkpoint: 'hex32',
    hyperparamsHash: 'hex32',
  },
  CHECKPOINT_SAVED: { modelId: 'string', shard: 'count', slice: 'count', checkpoint: 'hex32' },
  MODEL_PUBLISHED: { modelId: 'string', modelVersion: 'count', onnxSha256: 'hex32', manifestHash: 'hex32', metrics: 'object' },
  FORGET_REQUESTED: { requestId: 'string', datasetId: 'string', commitments: 'hex32[]', reason: 'string' },
  UNLEARN_COMPLETED: {
    modelId: 'string',
    requestIds: 'string[]',
    oldOnnxSha256: 'hex32',
    newOnnxSha256: 'hex32',
    modelVersion: 'count',
    evidence: 'object',
  },
  ANCHORED: {
    chainId: 'string',
    contract: 'hex20',
    txHash: 'hex32',
    blockNumber: 'count',
    treeSize: 'count',
    rootHash: 'hex32',
  },
  VERSION_RETIRED: { modelId: 'string', modelVersion: 'count', onnxSha256: 'hex32', forgetRequestIds: 'string[]+' },
  CHECKPOINTS_DELETED: { modelId: 'string', checkpoints: 'hex32[]+', forgetRequestIds: 'string[]+' },
  EVIDENCE_RECORDED: { modelId: 'string', modelVersion: 'count', forgetRequestIds: 'string[]+', evidence: 'object' },
  FORGET_SUSPENDED: { requestId: 'string', datasetId: 'string', graceDays: 'positive', deadline: 'isoTime' },
  FORGET_RESTORED: { requestId: 'string', datasetId: 'string', modelVersions: 'modelVersions' },
  FORGET_SHREDDED: { requestId: 'string', datasetId: 'string', cause: 'shredCause', keysDestroyed: 'count' },
  DATASET_VERSIONED: { datasetId: 'string', datasetVersion: 'count', root: 'hex32', size: 'count' },
  MODEL_ROLLED_BACK: { modelId: 'string', fromVersion: 'count', toVersion: 'count' },
  UNLEARN_HELD: { modelId: 'string', modelVersion: 'count', requestIds: 'string[]+', ...GUARD_FIGURES },
  VERSION_RELEASED: { modelId: 'string', modelVersion: 'count' },
  FORGET_EXTENDED: { requestId: 'string', reason: 'string', newDeadline: 'isoTime' },
  LEARN_HELD: { modelId: 'string', modelVersion: 'count', fromVersion: 'count', cause: 'learnCause', ...GUARD_FIGURES },
  BIAS_SCANNED: {
    jobId: 'string',
    modelId: 'string',
    modelVersion: 'count',
    method: 'biasScanMethod',
    metric: 'string',
    gapBefore: 'finite',
    candidates: 'count',
    candidatesRoot: 'hex32',
  },
};

/** Fields a type may carry; when present they are checked like the required ones. */
const OPTIONAL_FIELDS: Partial<Record<LedgerEventType, Record<string, FieldKind>>> = {
  DATASET_REGISTERED: { retentionDays: 'positive', protectedFeature: 'count' },
  MODEL_PUBLISHED: { runtime: 'envelope', privacy: 'privacy' },
  BATCH_LEARNED: { learnBatch: 'count' },
  UNLEARN_COMPLETED: { guarantee: 'guarantee', features: 'columns' },
  FORGET_REQUESTED: { features: 'columns' },
  LEARN_HELD: { learnBatch: 'count', requestIds: 'string[]+' },
};

const HEX32 = /^[0-9a-f]{64}$/;
/** An instant as Date.prototype.toISOString writes it (UTC, milliseconds: one form, so that equal instants hash equal). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const HEX20 = /^0x[0-9a-f]{40}$/;
const TX_HASH = /^0x[0-9a-f]{64}$/;

function checkField(kind: FieldKind, value: unknown, type: string, name: string): void {
  const fail = (want: string) => {
    throw new LedgerError('INVALID_EVENT', `${type}.${name} must be ${want}`, name);
  };
  switch (kind) {
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail('a non-empty string');
      return;
    case 'count':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail('a non-negative integer');
      return;
    case 'hex32':
      // ANCHORED.txHash is an Ethereum transaction hash, which is 0x-prefixed by convention.
      if (typeof value !== 'string' || !(HEX32.test(value) || (name === 'txHash' && TX_HASH.test(value))))
        fail('32 bytes of lowercase hex');
      return;
    case 'hex32|null':
      if (value !== null && (typeof value !== 'string' || !HEX32.test(value))) fail('null or 32 bytes of lowercase hex');
      return;
    case 'hex20':
      if (typeof value !== 'string' || !HEX20.test(value)) fail('a 0x-prefixed lowercase 20-byte address');
      return;
    case 'hex32[]':
    case 'hex32[]+':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || !HEX32.test(v)))
        fail(`${kind === 'hex32[]+' ? 'a non-empty' : 'an'} array of 32-byte lowercase hex strings`);
      else if (kind === 'hex32[]+' && value.length === 0) fail('a non-empty array of 32-byte lowercase hex strings');
      return;
    case 'string[]':
    case 'string[]+':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0))
        fail(`${kind === 'string[]+' ? 'a non-empty' : 'an'} array of strings`);
      else if (kind === 'string[]+' && value.length === 0) fail('a non-empty array of strings');
      return;
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('an object');
      return;
    case 'envelope':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`an object of ${RUNTIME_ENVELOPE_FIELDS.join(', ')}`);
      for (const field of RUNTIME_ENVELOPE_FIELDS) {
        const v = (value as Record<string, unknown>)[field];
        if (typeof v !== 'string' || v.length === 0)
          throw new LedgerError('INVALID_EVENT', `${type}.${name}.${field} must be a non-empty string`, `${name}.${field}`);
      }
      return;
    case 'privacy':
      checkPrivacyGuarantee(value, `${type}.${name}`, name);
      return;
    case 'guarantee':
      checkGuarantee(value, `${type}.${name}`, name);
      return;
    case 'positive':
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail('a finite number > 0');
      return;
    case 'isoTime':
      // Written back as it reads: a day that does not exist (2026-02-31) is refused, not rolled over.
      if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value)) || new Date(value).toISOString() !== value)
        fail('an ISO-8601 UTC time (YYYY-MM-DDTHH:mm:ss.sssZ)');
      return;
    case 'shredCause':
      if (!(SHRED_CAUSES as readonly unknown[]).includes(value)) fail(`one of ${SHRED_CAUSES.join(', ')}`);
      return;
    case 'learnCause':
      if (!(LEARN_HELD_CAUSES as readonly unknown[]).includes(value)) fail(`one of ${LEARN_HELD_CAUSES.join(', ')}`);
      return;
    case 'modelVersions':
      if (!Array.isArray(value)) fail('an array of {modelId, modelVersion, onnxSha256}');
      (value as unknown[]).forEach((v, i) => {
        const item = v as Record<string, unknown>;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('an array of {modelId, modelVersion, onnxSha256}');
        checkField('string', item.modelId, type, `${name}[${i}].modelId`);
        checkField('count', item.modelVersion, type, `${name}[${i}].modelVersion`);
        checkField('hex32', item.onnxSha256, type, `${name}[${i}].onnxSha256`);
      });
      return;
    case 'fraction':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) fail('a number in [0, 1]');
      return;
    case 'finite':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail('a finite number');
      return;
    case 'biasScanMethod':
      if (typeof value !== 'string' || !(BIAS_SCAN_METHODS as readonly string[]).includes(value)) fail(`one of ${BIAS_SCAN_METHODS.join(', ')}`);
      return;
    case 'columns':
      if (
        !Array.isArray(value) ||
        value.length === 0 ||
        value.some((v, i) => typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || (i > 0 && v <= (value[i - 1] as number)))
      )
        fail('a non-empty ascending array of distinct column indexes (non-negative integers)');
      return;
  }
}

/** MODEL_PUBLISHED.privacy: mechanism 'dp-sgd', positive numbers (delta and sampleRate at most 1), whole steps, an accountant. */
function checkPrivacyGuarantee(value: unknown, path: string, name: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LedgerError('INVALID_EVENT', `${path} must be an object`, name);
  const v = value as Record<string, unknown>;
  const bad = (field: string, want: string) => new LedgerError('INVALID_EVENT', `${path}.${field} must be ${want}`, `${name}.${field}`);
  if (v.mechanism !== 'dp-sgd') throw bad('mechanism', "'dp-sgd'");
  for (const field of ['epsilon', 'delta', 'noiseMultiplier', 'sampleRate', 'clipNorm']) {
    const n = v[field];
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw bad(field, 'a finite number > 0');
  }
  if ((v.delta as number) >= 1 || (v.sampleRate as number) > 1) throw bad((v.delta as number) >= 1 ? 'delta' : 'sampleRate', 'at most 1');
  if (typeof v.steps !== 'number' || !Number.isSafeInteger(v.steps) || v.steps < 1) throw bad('steps', 'a positive integer');
  if (typeof v.accountant !== 'string' || v.accountant.length === 0) throw bad('accountant', 'a non-empty string');
}

/** UNLEARN_COMPLETED.guarantee: its kind and exactly that kind's fields, each of its type. */
function checkGuarantee(value: unknown, path: string, name: string): void {
  const bad = (field: string, want: string) => new LedgerError('INVALID_EVENT', `${path}.${field} must be ${want}`, `${name}.${field}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new LedgerError('INVALID_EVENT', `${path} must be an object {kind, ...}`, name);
  const v = value as Record<string, unknown>;
  const fields: Record<string, (x: unknown) => boolean> = {};
  const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  const nonNegative = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (v.kind === 'certified') {
    Object.assign(fields, {
      epsilon: positive,
      delta: (x: unknown) => positive(x) && (x as number) < 1,
      residualBound: nonNegative,
      budget: positive,
      budgetUsed: nonNegative,
      retrained: (x: unknown) => typeof x === 'boolean',
    });
  } else if (v.kind === 'approximate') {
    Object.assign(fields, {
      algorithm: (x: unknown) => (APPROXIMATE_ALGORITHMS as readonly unknown[]).includes(x),
      steps: (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0,
    });
  } else if (v.kind !== 'exact') {
    throw bad('kind', "one of 'exact', 'certified', 'approximate'");
  }
  const wants: Record<string, string> = {
    epsilon: 'a finite number > 0',
    delta: 'a number in (0, 1)',
    residualBound: 'a finite number >= 0',
    budget: 'a finite number > 0',
    budgetUsed: 'a finite number >= 0',
    retrained: 'a boolean',
    algorithm: `one of ${APPROXIMATE_ALGORITHMS.join(', ')}`,
    steps: 'a non-negative integer',
  };
  for (const [field, ok] of Object.entries(fields)) if (!ok(v[field])) throw bad(field, wants[field]);
  const extra = Object.keys(v).find((key) => key !== 'kind' && !(key in fields));
  if (extra !== undefined) throw bad(extra, `absent from a guarantee of kind '${String(v.kind)}'`);
}

function checkJson(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new LedgerError('INVALID_EVENT', `${path} is not a finite number`, path);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${path}[${i}]`));
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkJson(v, `${path}.${k}`);
    return;
  }
  throw new LedgerError('INVALID_EVENT', `${path} is a ${typeof value}, which JSON cannot hold`, path);
}

/** Checks an event against its type's schema; throws LedgerError('INVALID_EVENT') naming the field. */
export function validateEvent(event: unknown): asserts event is LedgerEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event))
    throw new LedgerError('INVALID_EVENT', 'event must be a JSON object');
  const { type, version } = event as { type?: unknown; version?: unknown };
  if (typeof type !== 'string' || !(LEDGER_EVENT_TYPES as readonly string[]).includes(type))
    throw new LedgerError('INVALID_EVENT', `event.type must be one of ${LEDGER_EVENT_TYPES.join(', ')}`, 'type');
  if (version !== 1) throw new LedgerError('INVALID_EVENT', `${type}.version must be 1`, 'version');
  checkJson(event, type);
  const fields = REQUIRED_FIELDS[type as LedgerEventType];
  for (const [name, kind] of Object.entries(fields)) {
    checkField(kind, (event as Record<string, unknown>)[name], type, name);
  }
  for (const [name, kind] of Object.entries(OPTIONAL_FIELDS[type as LedgerEventType] ?? {})) {
    const value = (event as Record<string, unknown>)[name];
    if (value !== undefined) checkField(kind, value, type, name);
  }
  checkLifecycleEvent(event as LedgerEvent);
  if (type === 'UNLEARN_COMPLETED' || type === 'EVIDENCE_RECORDED') {
    // The membership attack's figures, when the evidence carries them (entries from before it have none).
    const membership = ((event as Record<string, unknown>).evidence as Record<string, unknown>).membership;
    if (membership !== undefined) checkMembershipEvidence(membership, `${type}.evidence.membership`);
  }
}

/** What the field kinds cannot say: a dataset version counts from 1; a rollback goes back; a held drop exceeds its limit. */
function checkLifecycleEvent(event: LedgerEvent): void {
  const bad = (field: string, message: string) => new LedgerError('INVALID_EVENT', `${event.type}.${field} ${message}`, field);
  if (event.type === 'DATASET_VERSIONED' && event.datasetVersion < 1) throw bad('datasetVersion', 'must be at least 1');
  if (event.type === 'MODEL_ROLLED_BACK' && event.toVersion >= event.fromVersion)
    throw bad('toVersion', `must be earlier than fromVersion (${event.fromVersion})`);
  if ((event.type === 'UNLEARN_HELD' || event.type === 'LEARN_HELD') && !(event.drop > event.maxTestAccuracyDrop))
    throw bad('drop', `must exceed maxTestAccuracyDrop (${event.maxTestAccuracyDrop}): a version is held only then`);
  if (event.type === 'LEARN_HELD') {
    if (event.fromVersion >= event.modelVersion) throw bad('fromVersion', `must be earlier than modelVersion (${event.modelVersion})`);
    if (event.cause === 'learn' && (event.learnBatch === undefined || event.learnBatch < 1 || event.requestIds !== undefined))
      throw bad('learnBatch', "must be a learn batch >= 1 when cause is 'learn' (and requestIds absent)");
    if (event.cause === 'restore' && (event.requestIds === undefined || event.learnBatch !== undefined))
      throw bad('requestIds', "must name the restored requests when cause is 'restore' (and learnBatch absent)");
  }
}
