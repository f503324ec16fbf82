import { MethodName, TrainingConfigInput } from './config';
import { AffectedShard, EvidenceRecordedEvent, UnlearnCompletedEvent } from './events';
import { TrainedModel } from './model';
import { LabeledExample, Sample } from './samples';
import { ModelEvaluation } from './evidence';
import type { MembershipEvidence } from '@lethe/events';
import { MembershipOptions } from './membership/options';
import type { ApproximateOptions } from './approximate/approximate-unlearning';
import type { PhaseClock } from './phase-clock';

export interface TrainRequest {
  modelId: string;
  config: TrainingConfigInput;
  samples: readonly Sample[];
  /** Version number to publish (default 1). */
  version?: number;
  /** Held-out samples for the published metrics. */
  testSet?: readonly LabeledExample[];
  /** Training samples the published train accuracy is measured on (a seeded subset; default 1000). */
  evaluationLimit?: number;
  /** The dataset's protected column: MODEL_PUBLISHED.metrics.fairness holds the figures on the test set. */
  protectedFeature?: number;
  /** Where the training's phases are charged (as a forget's timings name them, and `ledger`): a report, never published. */
  clock?: PhaseClock;
}

export interface ForgetRequest {
  /** The forget requests served together in this pass (recorded in UNLEARN_COMPLETED). */
  requestIds: string[];
  /** Samples to forget, by externalId; the union over all requests. */
  externalIds: string[];
  /** Held-out samples for test accuracy and the membership-inference AUC. */
  testSet?: readonly LabeledExample[];
  /** Also train from scratch without the samples and report its numbers (costs a full retrain). */
  compareWithRetrain?: boolean;
  /**
   * Retrain every shard from its first slice, as a full retrain would, instead of only the affected ones;
   * the evidence, publishing and events are the same and so are the published bytes. The baseline that
   * benchmarks compare forgetting with.
   */
  retrainFromScratch?: boolean;
  /** Retained samples the retain accuracy is measured on (a seeded subset; default 1000). */
  evaluationLimit?: number;
  /**
   * Also run the membership attack (measureMembership) and record it as UNLEARN_COMPLETED.evidence.membership;
   * it trains `shadowModels` shadow models and a reference (and, with canaries, two evaluation copies), so the
   * forget costs that many trainings more. Non-members are the held-out samples of `testSet`.
   */
  membership?: MembershipOptions;
  /**
   * Unlearn approximately instead (SISA and full retraining only): a few SGD steps of the algorithm from the
   * published weights of the shards that held the samples; UNLEARN_COMPLETED.guarantee says so.
   */
  approximate?: ApproximateOptions;
  /**
   * The version to publish (default: the model's version + 1). An exact pass that follows an approximate one
   * unlearns from the exact version before it and publishes after the approximate one.
   */
  version?: number;
  /** The dataset's protected column: UNLEARN_COMPLETED.evidence.fairness holds the figures before and after on the test set. */
  protectedFeature?: number;
}

/** Samples learned again (UnlearningMethod.relearn): a suspended forget undone. */
export interface RelearnRequest {
  /** The new version's samples: the model's, with the samples learned again among them, in upload order. */
  samples: readonly Sample[];
  /** The samples learned again, by externalId (each must be in `samples` and not in the model's). */
  externalIds: string[];
  /**
   * Online learning (SISA and full retraining): the samples of `externalIds` are a new learn batch, appended as
   * one slice after every shard's last (Sample.batch = the model's highest + 1): each shard resumes from its last
   * checkpoint and trains that slice alone, on its own samples. Without it (a suspended forget restored) each
   * sample goes back where its own `batch` (0: placed by hash among the R slices) puts it.
   */
  append?: boolean;
  /** Held-out samples for the published metrics. */
  testSet?: readonly LabeledExample[];
  /** Training samples the published train accuracy is measured on (a seeded subset; default 1000). */
  evaluationLimit?: number;
}

/** Feature-level unlearning of one model (UnlearningMethod.forgetFeatures). */
export interface FeatureForgetRequest {
  /** The forget requests served (recorded in UNLEARN_COMPLETED). */
  requestIds: string[];
  /** Columns to stop reading; the model's earlier masked columns stay masked. */
  features: number[];
  /** Held-out samples: accuracy and permutation importance before and after are measured on them (else on the training evaluation subset). */
  testSet?: readonly LabeledExample[];
  /** The dataset's protected column: the fairness figures before and after go into the evidence. */
  protectedFeature?: number;
  evaluationLimit?: number;
}

/** A forget to publish before its evidence (UnlearningMethod.publishForget): what the evidence needs goes to recordEvidence. */
export type PublishForgetRequest = Pick<ForgetRequest, 'requestIds' | 'externalIds' | 'retrainFromScratch' | 'testSet' | 'protectedFeature'>;

/** The evidence of a forget published with `evidence: 'later'` (UnlearningMethod.recordEvidence). */
export interface EvidenceRequest {
  /** The forget requests the step served (recorded in EVIDENCE_RECORDED). */
  requestIds: string[];
  /** Held-out samples for test accuracy, the loss-threshold AUC and the membership attack's non-members. */
  testSet?: readonly LabeledExample[];
  /** Also train from scratch without the samples and report its numbers (costs a full retrain). */
  compareWithRetrain?: boolean;
  /** Retained samples the retain accuracy is measured on (a seeded subset; default 1000). */
  evaluationLimit?: number;
  /** Also run the membership attack (see ForgetRequest.membership). */
  membership?: MembershipOptions;
}

export interface RecordedEvidence {
  evidence: ForgetEvidence;
  event: EvidenceRecordedEvent;
  /** Wall-clock seconds per phase: evaluateBefore, evaluateAfter, reference, membership, ledger. */
  timings: { [phase: string]: number };
}

/** A membership evaluation of a forget already done (UnlearningMethod.measureMembership). */
export interface MembershipRequest {
  /** Held-out samples, the non-members (with the canaries kept out). */
  testSet?: readonly LabeledExample[];
  options: MembershipOptions;
}

export interface ForgetEvidence {
  forgottenCount: number;
  retainCount: number;
  /** Retained samples the retain accuracies were measured on. */
  retainEvaluated: number;
  before: ModelEvaluation;
  after: ModelEvaluation;
  reference?: ModelEvaluation & { onnxSha256: string };
  membership?: MembershipEvidence;
}

export interface ForgetOutcome {
  model: TrainedModel;
  affected: AffectedShard[];
  event: UnlearnCompletedEvent;
  evidence: ForgetEvidence;
  /** Optimizer steps the unlearning ran (the reference retrain not included). */
  steps: number;
  /** Where the time went, in seconds (not recorded in the ledger). */
  timings: ForgetTimings;
}

/** A forget published before its evidence was measured: UNLEARN_COMPLETED.evidence has only the counts. */
export type PublishedForget = Omit<ForgetOutcome, 'evidence'>;

/** Wall-clock seconds of a forget request's phases. */
export interface ForgetTimings {
  /** Checking the request, splitting the samples, choosing the evaluation subset. */
  prepare: number;
  /** Evaluating the old version on the retain subset, the forgotten samples and the test set. */
  evaluateBefore: number;
  /** Planning the shards and training the affected ones (steps, checkpoint hashing; writes are started). */
  retrain: number;
  /** Members' weights, ONNX export and hash, evaluating the new version, awaiting checkpoint writes, manifest. */
  publish: number;
  /** Appending the events to the ledger. */
  ledger: number;
  /** The from-scratch reference with its evaluation (compareWithRetrain), 0 without it. */
  reference: number;
  /** The membership attack: shadow models, reference, evaluation copies, scoring (0 without it). */
  membership: number;
  total: number;
  /** Every phase on its own: prepare, evaluateBefore, plan, train, members, export, evaluateAfter, checkpointWrites, manifest, reference, ledger. */
  phases: { [phase: string]: number };
  /** The process's CPU seconds per phase (every thread), where the method records them. */
  cpuPhases?: { [phase: string]: number };
}

/**
 * One way to learn and to forget. New methods (certified removal, DP-SGD, ...) implement this interface.
 * Errors are UnlearningError; on error nothing is stored in the ledger and the old model stays valid.
 */
export interface UnlearningMethod {
  readonly name: MethodName;
  train(request: TrainRequest): Promise<TrainedModel>;
  forget(model: TrainedModel, request: ForgetRequest): Promise<ForgetOutcome>;
  /**
   * The membership evidence of a forget from `before` to `after` (see measureMembership): what
   * ForgetRequest.membership records in the forget's own UNLEARN_COMPLETED, computed on its own, so that it can
   * run in the forget's pass or any time after it. Reports nothing to the ledger.
   */
  measureMembership(before: TrainedModel, after: TrainedModel, request: MembershipRequest): Promise<MembershipEvidence>;
  /**
   * Forgets as `forget` does, but publishes as soon as the new version is trained, evaluating nothing: its
   * MODEL_PUBLISHED.metrics has the sample count only, and its UNLEARN_COMPLETED.evidence the counts and
   * `recordedIn: 'EVIDENCE_RECORDED'`. recordEvidence measures the evidence afterwards. Methods without the
   * pair publish their evidence inline only.
   */
  publishForget?(model: TrainedModel, request: PublishForgetRequest): Promise<PublishedForget>;
  /**
   * The evidence of a forget publishForget made, from `before` to `after` (its model): accuracies before and
   * after on the retained subset, the forgotten samples and the test set, the loss-threshold AUC, and the
   * reference and membership attack when asked for; appended to the ledger as EVIDENCE_RECORDED.
   */
  recordEvidence?(before: TrainedModel, after: TrainedModel, request: EvidenceRequest): Promise<RecordedEvidence>;
  /**
   * Learns samples again that a forget removed (a suspended forget restored): retrains what forgetting them
   * retrained (SISA: the shards that hold them, from the first slice holding one; full: everything), from the
   * checkpoints before them, and publishes the next version (BATCH_LEARNED, CHECKPOINT_SAVED, MODEL_PUBLISHED).
   * Training is deterministic, so when nothing else changed since, its ONNX bytes are those of the version before
   * the forget. Methods that cannot (certified removal) leave it out.
   */
  relearn?(model: TrainedModel, request: RelearnRequest): Promise<TrainedModel>;
  /**
   * Feature-level unlearning: trains the model again from scratch on its samples with the columns masked
   * (config.maskedFeatures), as the next version, and appends its MODEL_PUBLISHED (and batches) with an
   * UNLEARN_COMPLETED naming the columns, whose evidence holds accuracy and the columns' permutation importance
   * before and after. SISA and full retraining only.
   */
  forgetFeatures?(model: TrainedModel, request: FeatureForgetRequest): Promise<{ model: TrainedModel; event: UnlearnCompletedEvent }>;
  /** Releases the onnxruntime sessions it holds. */
  release(): Promise<void>;
}
