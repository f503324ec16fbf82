// Datasets, deterministic training on onnxruntime-node, SISA and exact unlearning, evidence, serving.
export { UnlearningError } from './errors';
export type { UnlearningErrorCode, UnlearningIssue } from './errors';
export { compactFeatures, FEATURE_LIMIT, packFeatures } from './samples';
export type { FeatureRow, LabeledExample, Sample } from './samples';
export { METHOD_NAMES, normalizeConfig, hashHyperparameters, canonicalConfig, layerSizesOf, sisaEpochSchedule, epochsOfSlices, resolveStoredSchedule } from './config';
export type { TrainingConfig, TrainingConfigInput, MethodName, ModelKind, Aggregation } from './config';
export { validateSamples, validateExamples, checkEnoughData } from './validate';
export { parseExamples } from './parse-examples';
export type { ParsedExample } from './parse-examples';
export type { ExampleFormat } from './parse-examples';
export { loadIris, loadMnist, splitTrainTest, IRIS_FEATURES, IRIS_CLASSES, MNIST_FEATURES, MNIST_CLASSES } from './datasets';
export { isHeldOut, splitHoldout, computeHoldoutPoint, MAX_HOLDOUT_FRACTION } from './holdout';
export { placeSample, planShards } from './assignment';
export type { Placement, ShardPlan, Plan } from './assignment';
export { computeBatchRoot } from './batch-root';
export { MemoryCheckpointStore } from './checkpoint-store';
export type { CheckpointStore } from './checkpoint-store';
export { ArtifactCheckpointStore, FileCheckpointStore } from './file-checkpoint-store';
export { batchKey, checkpointsOf, findUnreferencedCheckpoints, listBatchMembers } from './lineage';
export type { BatchMembers } from './lineage';
export { MemoryLedgerSink } from './events';
export type {
  LedgerSink,
  EngineEvent,
  BatchLearnedEvent,
  CheckpointSavedEvent,
  ModelPublishedEvent,
  UnlearnCompletedEvent,
  EvidenceRecordedEvent,
  AffectedShard,
  JsonValue,
} from './events';
export type { Progress, ProgressPhase, ProgressCallback } from './progress';
export { LruMap } from './lru';
export { PhaseClock } from './phase-clock';
export type { RuntimeOptions } from './runtime';
export { compareRuntimeEnvelopes, describeRuntimeEnvelope, detectRuntimeEnvelope, inferCpuKernels } from './runtime-envelope';
export type { RuntimeEnvelope } from './runtime-envelope';
export { configureHeapForTraining, heapGrowingPercent, holdHeapForTraining, TRAINING_HEAP_GROWING_PERCENT } from './runtime';
export type { TrainedModel, ShardRecord, SliceRecord } from './model';
export type {
  UnlearningMethod,
  RelearnRequest,
  TrainRequest,
  ForgetRequest,
  ForgetOutcome,
  ForgetEvidence,
  ForgetTimings,
  MembershipRequest,
  EvidenceRequest,
  RecordedEvidence,
  FeatureForgetRequest,
  PublishedForget,
} from './method';
export { genesisCheckpoint, addressCheckpoint } from './sharded-training';
export { ShardTrainer, checkShardSamples } from './shard-task';
export type { ShardDispatcher, ShardResult, ShardTask } from './shard-task';
export type { EngineDependencies } from './sharded-training';
export { createSisaMethod } from './sisa';
export { createFullRetrainMethod } from './full-retrain';
export { checkCertifiedTraining, createCertifiedMethod } from './certified/certified-method';
export type { CertifiedUnlearningMethod } from './certified/certified-method';
export { createMethod } from './methods';
export { isApproximateVersion } from './sharded-method';
export { APPROXIMATE_ALGORITHM_NAMES, resolveApproximate } from './approximate/approximate-unlearning';
export type { ApproximateOptions, ResolvedApproximate } from './approximate/approximate-unlearning';
export { buildUnlearnStepGraph } from './approximate/unlearn-step-graph';
export {
  checkCertifiedRequest,
  checkCertifiedSettings,
  resolveCertified,
  residualBudget,
  DEFAULT_CERTIFIED_SIGMA,
  MAX_CERTIFIED_LAMBDA,
} from './certified/certified-settings';
export type { CertifiedRequest, CertifiedSettings } from './certified/certified-settings';
export { GRADIENT_TOLERANCE as CERTIFIED_GRADIENT_TOLERANCE, fitOneVsRest, predictOneVsRest } from './certified/certified-training';
export { evaluateModel, selectEvaluationSamples, DEFAULT_EVALUATION_LIMIT } from './evidence';
export type { ModelEvaluation } from './evidence';
export { computeAccuracy, computeLosses, computeMembershipAuc } from './metrics';
export { measureMembership, MEMBERSHIP_ATTACK } from './membership/measure';
export type { MembershipInput } from './membership/measure';
export { createMembershipEngine } from './membership/engine';
export type { AttackedModel, MembershipEngine } from './membership/engine';
export { checkMembershipOptions, DEFAULT_SHADOW_MODELS, MEMBERSHIP_LIMITS } from './membership/options';
export type { MembershipOptions } from './membership/options';
export { summarizeAttack, FPR_LEVELS, DEFAULT_BOOTSTRAP } from './membership/attack-metrics';
export type { AttackFigures } from './membership/attack-metrics';
export { fitGaussians, likelihoodRatios, scaledLogit, PER_EXAMPLE_VARIANCE_FROM } from './membership/lira';
export { makeCanaries, isCanary } from './membership/canaries';
export { planInclusion } from './membership/shadow-plan';
export { loadVerifiedModel, VerifiedModel } from './serve';
export type { Predictions } from './serve';
export { buildInferenceGraph, readInferenceMembers, INPUT_NAME, PROBABILITIES_NAME, LABEL_NAME } from './inference-graph';
export type { InputProjection } from './inference-graph';
export { buildStepGraph } from './step-graph';
export { StepRunner } from './trainer';
export { initializeWeights, countForwardMacs } from './architecture';
export type { LayerSizes, Weights } from './architecture';
export { buildManifest, hashManifest, MANIFEST_FORMAT } from './manifest';
export { ONNX_OPSET, ONNX_IR_VERSION, ONNX_PRODUCER_NAME } from './onnx-graph';
export { UNLEARNING_CODE_VERSION, ONNXRUNTIME_VERSION, TRAINING_RUNTIME } from './version';
export { DEFAULT_RDP_ORDERS, computeRdp, computeRdpStep, rdpEpsilon, rdpToEpsilon } from './privacy/rdp-accountant';
export { accountEpsilon, PRIVACY_ACCOUNTANTS } from './privacy/accountant';
export type { PrivacyAccountant, SubsampledGaussian } from './privacy/accountant';
export { solveNoiseMultiplier, MAX_NOISE_MULTIPLIER } from './privacy/noise-multiplier';
export { accountedSteps, checkPrivacyRequest, privacyGuarantee, resolvePrivacy } from './privacy/privacy-config';
export type { PrivacyGuarantee, PrivacyRequest, PrivacySettings } from './privacy/privacy-config';
export { buildDpStepGraph } from './privacy/dp-step-graph';
export { DpStepRunner, dpGraphRows } from './privacy/dp-trainer';
export { checkMaskedFeatures, unionMaskedFeatures } from './feature-mask';
export { computeFairness, measureFairness, fairnessToJson } from './fairness';
export type { FairnessFigures, GroupFigures } from './fairness';
export { computePermutationImportance } from './feature-importance';
export type { ColumnImportance } from './feature-importance';
export { biasScanMethodFor, scanBiasByInfluence, INFLUENCE_DAMPING } from './bias-scan';
export type { BiasCandidate, BiasScanResult } from './bias-scan';
export { scanBiasBySlices, countScannedSlices, BIAS_METRICS, MAX_SCANNED_SLICES } from './leave-one-slice-out';
export type { BiasMetric, SliceInfluence, SliceScanResult, SliceScanOptions } from './leave-one-slice-out';
