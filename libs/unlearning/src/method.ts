import { MethodName, TrainingConfigInput } from './config';
import { AffectedShard, UnlearnCompletedEvent } from './events';
import { TrainedModel } from './model';
import { LabeledExample, Sample } from './samples';
import { ModelEvaluation } from './evidence';

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
}

export interface ForgetEvidence {
  forgottenCount: number;
  retainCount: number;
  /** Retained samples the retain accuracies were measured on. */
  retainEvaluated: number;
  before: ModelEvaluation;
  after: ModelEvaluation;
  reference?: ModelEvaluation & { onnxSha256: string };
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
  total: number;
  /** Every phase on its own: prepare, evaluateBefore, plan, train, members, export, evaluateAfter, checkpointWrites, manifest, reference, ledger. */
  phases: { [phase: string]: number };
}

/**
 * One way to learn and to forget. New methods (certified removal, DP-SGD, ...) implement this interface.
 * Errors are UnlearningError; on error nothing is stored in the ledger and the old model stays valid.
 */
export interface UnlearningMethod {
  readonly name: MethodName;
  train(request: TrainRequest): Promise<TrainedModel>;
  forget(model: TrainedModel, request: ForgetRequest): Promise<ForgetOutcome>;
  /** Releases the onnxruntime sessions it holds. */
  release(): Promise<void>;
}
