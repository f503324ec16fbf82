import { ApiProperty } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsIn, IsInt, IsNumber, IsObject, IsPositive, Max, Min, ValidateBy, ValidateIf, ValidateNested, ValidationOptions } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';
import type { UnlearnGuarantee } from '@lethe/events';
import {
  DEFAULT_SHADOW_MODELS,
  MAX_CERTIFIED_LAMBDA,
  MAX_HOLDOUT_FRACTION,
  MEMBERSHIP_LIMITS,
  PRIVACY_ACCOUNTANTS,
  type CertifiedSettings,
  epochsOfSlices,
  normalizeConfig,
  resolveStoredSchedule,
  type JsonValue,
  type PrivacyAccountant,
  type PrivacySettings,
  type TrainingConfigInput,
} from '@lethe/unlearning';
import { IsUuid } from '../common/uuid';
import { DatasetEntity } from '../datasets/dataset.entity';
import type { TrainedShard } from '../jobs/job-task.repository';
import { MODEL_STATES, ModelEntity, ModelState, ModelVersionEntity, isHeld, type HeldFigures } from './model.entity';
import { DEFAULT_MAX_TEST_ACCURACY_DROP, GuardDto } from './model-lifecycle.dto';

export const MAX_PREDICT_ROWS = 10_000;

/** A non-empty string of at most 200 characters, or a safe integer. */
function IsSeed(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isSeed',
      validator: {
        validate: (value: unknown) => (typeof value === 'string' && value.length >= 1 && value.length <= 200) || Number.isSafeInteger(value),
        defaultMessage: () => 'seed must be a non-empty string of at most 200 characters or a safe integer',
      },
    },
    options,
  );
}

/** A number in [0, MAX_HOLDOUT_FRACTION]. */
function IsHoldoutFraction(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isHoldoutFraction',
      validator: {
        validate: (value: unknown) => typeof value === 'number' && value >= 0 && value <= MAX_HOLDOUT_FRACTION,
        defaultMessage: () => `holdoutFraction must be a number in [0, ${MAX_HOLDOUT_FRACTION}]`,
      },
    },
    options,
  );
}

export class ArchitectureDto {
  @ApiProperty({ enum: ['logreg', 'mlp'], description: 'logistic regression, or a multi-layer perceptron (ReLU)' })
  @IsIn(['logreg', 'mlp'], { message: 'architecture.type must be one of: logreg, mlp' })
  type!: 'logreg' | 'mlp';

  @ApiProperty({ required: false, type: [Number], description: 'hidden layer widths of an mlp (1..8 layers of 1..65536 units)', example: [16] })
  @IsOptionalField()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(8)
  @IsInt({ each: true })
  @Min(1, { each: true })
  @Max(65536, { each: true })
  hidden?: number[];
}

/** An integer in [min, max] (or 0 when `orZero`), with a message naming the field and its range. */
function IsCount(name: string, min: number, max: number, orZero = false, options?: ValidationOptions): PropertyDecorator {
  const range = orZero ? `0 or an integer in [${min}, ${max}]` : `an integer in [${min}, ${max}]`;
  return ValidateBy(
    {
      name: 'isCount',
      validator: {
        validate: (value: unknown) => Number.isInteger(value) && ((value as number) >= min || (orZero && value === 0)) && (value as number) <= max,
        defaultMessage: () => `${name} must be ${range}`,
      },
    },
    options,
  );
}

const { shadowModels: SHADOWS, canaries: CANARIES, minMembers: MIN_MEMBERS, minNonMembers: MIN_NON_MEMBERS } = MEMBERSHIP_LIMITS;

export class MembershipDto {
  @ApiProperty({
    required: false,
    minimum: SHADOWS.min,
    maximum: SHADOWS.max,
    default: DEFAULT_SHADOW_MODELS,
    description:
      `shadow models trained IN/OUT of each sample the attack asks about, ${SHADOWS.min}..${SHADOWS.max}: each costs one training of the model ` +
      `(so a forget with ${DEFAULT_SHADOW_MODELS} costs about ${DEFAULT_SHADOW_MODELS + 1} trainings more); from 64 on each sample gets its own variances`,
  })
  @IsOptionalField()
  @IsCount('shadowModels', SHADOWS.min, SHADOWS.max)
  shadowModels?: number;

  @ApiProperty({
    required: false,
    default: 0,
    description:
      `canaries (random-label marker samples) the evaluation injects into its own copy of the model and forgets, and as many it keeps out: ` +
      `0, or ${CANARIES.min}..${CANARIES.max}. They show the attack's power on the "before" model; only evaluation-only models ever learn them, never the served one`,
  })
  @IsOptionalField()
  @IsCount('canaries', CANARIES.min, CANARIES.max, true)
  canaries?: number;
}

export class EvaluationDto {
  @ApiProperty({
    required: false,
    minimum: 0,
    maximum: MAX_HOLDOUT_FRACTION,
    default: 0,
    example: 0.2,
    description:
      'fraction of the samples held out of training as a test set, in [0, 0.5] (default 0: every sample is trained on). ' +
      'A sample is held out when the first 6 bytes of SHA-256("lethe-holdout|" seed 0x00 externalId) / 2^48 fall below it: ' +
      'the rule depends on the seed and the sample only, so forgetting moves no other sample across it',
  })
  @IsOptionalField() // absent is the default; null is refused
  @IsHoldoutFraction()
  holdoutFraction?: number;

  @ApiProperty({
    required: false,
    default: false,
    description:
      "each forget also retrains from scratch without the samples and records that reference's numbers in UNLEARN_COMPLETED (costs a full retrain)",
  })
  @IsOptionalField()
  @IsBoolean({ message: 'referenceRetrain must be a boolean' })
  referenceRetrain?: boolean;

  @ApiProperty({
    required: false,
    type: MembershipDto,
    description:
      'each forget also runs a membership attack (LiRA per forgotten sample, as U-LiRA) on the model before, after, and a reference retrained ' +
      'under another seed, and records its TPR at 1% / 0.1% FPR and AUC with 95% intervals in UNLEARN_COMPLETED.evidence.membership. ' +
      `It compares the injected canaries with those kept out when there are canaries; else the forgotten samples with the held-out ones ` +
      `(at least ${MIN_NON_MEMBERS}, see holdoutFraction), and a forget of fewer than ${MIN_MEMBERS} samples records why it was skipped`,
  })
  @IsOptionalField()
  @IsObject({ message: 'membership must be an object' })
  @ValidateNested()
  @Type(() => MembershipDto)
  membership?: MembershipDto;
}

export class PrivacyDto {
  @ApiProperty({ example: 2, description: 'the target ε, a finite number > 0: the noise multiplier is solved for it' })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'epsilon must be a finite number' })
  @IsPositive({ message: 'epsilon must be a number > 0' })
  epsilon!: number;

  @ApiProperty({ example: 1e-5, description: 'the target δ, in (0, 1/n), n the training samples (those not held out)' })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'delta must be a finite number' })
  @IsPositive({ message: 'delta must be a number > 0' })
  delta!: number;

  @ApiProperty({ example: 1, description: "C: each example's gradient is clipped to this L2 norm before the noise (σC) is added" })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'clipNorm must be a finite number' })
  @IsPositive({ message: 'clipNorm must be a number > 0' })
  clipNorm!: number;

  @ApiProperty({ required: false, enum: PRIVACY_ACCOUNTANTS, default: 'rdp', description: 'the privacy accountant that solves σ and states ε' })
  @IsOptionalField()
  @IsIn(PRIVACY_ACCOUNTANTS as unknown as string[], { message: `accountant must be one of: ${PRIVACY_ACCOUNTANTS.join(', ')}` })
  accountant?: PrivacyAccountant;
}

export class CertifiedDto {
  @ApiProperty({ example: 1, description: 'ε of the (ε, δ) certificate, a finite number > 0' })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'certified.epsilon must be a finite number' })
  @IsPositive({ message: 'certified.epsilon must be a number > 0' })
  epsilon!: number;

  @ApiProperty({ example: 1e-5, description: 'δ of the certificate, in (0, 1/n), n the training samples (those not held out)' })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'certified.delta must be a finite number' })
  @IsPositive({ message: 'certified.delta must be a number > 0' })
  delta!: number;

  @ApiProperty({ example: 1e-4, description: `λ, the L2 regularisation per sample (the objective is mean loss + λ/2 ‖w‖²), in (0, ${MAX_CERTIFIED_LAMBDA}]` })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'certified.lambda must be a finite number' })
  @IsPositive({ message: 'certified.lambda must be a number > 0' })
  @Max(MAX_CERTIFIED_LAMBDA, { message: `certified.lambda must be at most ${MAX_CERTIFIED_LAMBDA}` })
  lambda!: number;

  @ApiProperty({
    required: false,
    default: 1,
    description:
      'σ, the standard deviation of the objective perturbation b ~ N(0, σ²I): larger σ allows more removals before a retraining ' +
      '(the budget is σε/√(2 ln(1.5/δ))) and costs accuracy',
  })
  @IsOptionalField()
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'certified.sigma must be a finite number' })
  @IsPositive({ message: 'certified.sigma must be a number > 0' })
  sigma?: number;
}

/** A model's evaluation settings with their defaults filled in. */
export interface EvaluationSettings {
  holdoutFraction: number;
  referenceRetrain: boolean;
  /** The membership attack's settings, null when the model does not ask for it. */
  membership: { shadowModels: number; canaries: number } | null;
}

/** The evaluation settings of a model's configuration as it was given (POST /v1/models); absent means the defaults. */
export function evaluationSettingsOf(config: { evaluation?: unknown }): EvaluationSettings {
  const given = (config.evaluation ?? {}) as { holdoutFraction?: unknown; referenceRetrain?: unknown; membership?: { shadowModels?: unknown; canaries?: unknown } };
  const membership = typeof given.membership === 'object' && given.membership !== null ? given.membership : null;
  return {
    holdoutFraction: typeof given.holdoutFraction === 'number' ? given.holdoutFraction : 0,
    referenceRetrain: given.referenceRetrain === true,
    membership: membership && {
      shadowModels: typeof membership.shadowModels === 'number' ? membership.shadowModels : DEFAULT_SHADOW_MODELS,
      canaries: typeof membership.canaries === 'number' ? membership.canaries : 0,
    },
  };
}

export class CreateModelDto {
  @ApiProperty({ format: 'uuid' })
  @IsUuid('datasetId')
  datasetId!: string;

  @ApiProperty({
    enum: ['sisa', 'full', 'certified'],
    description:
      'SISA (shards x slices, forgets by retraining affected slices), full retraining, or certified removal (Guo et al. 2020: a logreg ' +
      'trained by L-BFGS on a perturbed objective, forgets by a Newton step within an (ε, δ) budget; needs `certified`)',
  })
  @IsIn(['sisa', 'full', 'certified'], { message: 'method must be one of: sisa, full, certified' })
  method!: 'sisa' | 'full' | 'certified';

  @ApiProperty({ required: false, description: 'SISA shards S, 1..4096 (default 1; 1 for full)' })
  @IsOptionalField()
  @IsInt()
  @Min(1)
  @Max(4096)
  shards?: number;

  @ApiProperty({ required: false, description: 'SISA slices R per shard, 1..4096 (default 1; 1 for full)' })
  @IsOptionalField()
  @IsInt()
  @Min(1)
  @Max(4096)
  slices?: number;

  @ApiProperty({ type: ArchitectureDto })
  @IsObject({ message: 'architecture must be an object' })
  @ValidateNested()
  @Type(() => ArchitectureDto)
  architecture!: ArchitectureDto;

  @ApiProperty({ required: false, description: '1..10000 (not for certified)', example: 20 })
  @ValidateIf((body: CreateModelDto) => body.method !== 'certified')
  @IsInt()
  @Min(1)
  @Max(10000)
  epochs?: number;

  @ApiProperty({
    required: false,
    minimum: 1,
    maximum: 10000,
    description:
      'sisa only: the epochs every slice trains (slice r trains on slices 0..r). Default: the SISA paper\'s schedule, ' +
      'slice i trains floor((i+1)a) - floor(i*a) epochs with a = 2 * epochs / (slices + 1), at least 1, so that slicing ' +
      'costs about what `epochs` epochs over the data cost. The resolved schedule is the response\'s epochsPerSlice',
  })
  @IsOptionalField()
  @IsInt({ message: 'epochsPerSlice must be an integer' })
  @Min(1)
  @Max(10000)
  epochsPerSlice?: number;

  @ApiProperty({ required: false, description: '1..65536 (not for certified)', example: 16 })
  @ValidateIf((body: CreateModelDto) => body.method !== 'certified')
  @IsInt()
  @Min(1)
  @Max(65536)
  batchSize?: number;

  @ApiProperty({ required: false, description: 'in (0, 100] (not for certified)', example: 0.1 })
  @ValidateIf((body: CreateModelDto) => body.method !== 'certified')
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @IsPositive()
  @Max(100)
  learningRate?: number;

  @ApiProperty({ oneOf: [{ type: 'string' }, { type: 'integer' }], description: 'fixes initial weights, sample placement and order', example: 'iris-1' })
  @IsSeed()
  seed!: string | number;

  @ApiProperty({
    required: false,
    type: EvaluationDto,
    description:
      'evidence of forgetting: a held-out test set (test accuracy, membership-inference AUC), a retrained-from-scratch reference, and a membership attack',
  })
  @IsOptionalField()
  @IsObject({ message: 'evaluation must be an object' })
  @ValidateNested()
  @Type(() => EvaluationDto)
  evaluation?: EvaluationDto;

  @ApiProperty({
    required: false,
    type: PrivacyDto,
    description:
      'train with DP-SGD (Poisson sampling per shard at about batchSize / shard size, per-example clipping to clipNorm, Gaussian ' +
      'noise): each published version is (epsilon, delta)-DP for every sample, by the accountant; MODEL_PUBLISHED.privacy records it',
  })
  @IsOptionalField()
  @IsObject({ message: 'privacy must be an object {epsilon, delta, clipNorm}' })
  @ValidateNested()
  @Type(() => PrivacyDto)
  privacy?: PrivacyDto;

  @ApiProperty({
    required: false,
    type: CertifiedDto,
    description:
      'method certified only: the (ε, δ) certificate and λ; each forget is one Newton step while the accumulated gradient-residual bound ' +
      'stays within σε/√(2 ln(1.5/δ)), else the model is retrained from scratch (UNLEARN_COMPLETED.guarantee records both)',
  })
  @IsOptionalField()
  @IsObject({ message: 'certified must be an object {epsilon, delta, lambda}' })
  @ValidateNested()
  @Type(() => CertifiedDto)
  certified?: CertifiedDto;

  @ApiProperty({
    required: false,
    type: GuardDto,
    description:
      `the catastrophic-forgetting guard. Without it every model with a holdout has the default (maxTestAccuracyDrop ${DEFAULT_MAX_TEST_ACCURACY_DROP}), ` +
      "checked when the version's evidence is measured, just after it is served; set it and the test accuracy is measured before the version is served",
  })
  @IsOptionalField()
  @IsObject({ message: 'guard must be an object {maxTestAccuracyDrop}' })
  @ValidateNested()
  @Type(() => GuardDto)
  guard?: GuardDto;
}

export class CreatedModelResponseDto {
  @ApiProperty({ format: 'uuid' }) modelId!: string;
  @ApiProperty({ format: 'uuid', description: 'the training job: GET /v1/jobs/{jobId}' }) jobId!: string;
}

export class ShardTaskDto {
  @ApiProperty() shard!: number;
  @ApiProperty({ description: 'the worker that trained it (WORKER_NAME, or host:pid, and a random suffix)' }) worker!: string;
  @ApiProperty({ nullable: true, type: Number, description: 'seconds its task took' }) seconds!: number | null;
}

export class ModelVersionResponseDto {
  @ApiProperty() version!: number;
  @ApiProperty({ description: 'SHA-256 of the ONNX file, as in MODEL_PUBLISHED' }) onnxSha256!: string;
  @ApiProperty() manifestHash!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ type: Object }) metrics!: { [key: string]: JsonValue };
  @ApiProperty({ description: 'index of its MODEL_PUBLISHED entry' }) ledgerIndex!: number;
  @ApiProperty({ required: false, description: 'index of its UNLEARN_COMPLETED entry (versions made by forgetting)' }) unlearnLedgerIndex?: number;
  @ApiProperty({ type: [String], description: 'forget requests whose samples this version no longer learned' }) reflectsForgetRequests!: string[];
  @ApiProperty({
    required: false,
    type: Object,
    description:
      'evidence of forgetting (versions made by forgetting). A version is served as soon as it is published; its evidence is measured ' +
      "afterwards: until then this holds only the counts and recordedIn: 'EVIDENCE_RECORDED'",
  })
  evidence?: { [key: string]: JsonValue };
  @ApiProperty({ required: false, description: 'the EVIDENCE_RECORDED entry of the evidence, once it is recorded' }) evidenceLedgerIndex?: number;
  @ApiProperty({
    enum: ['live', 'held', 'retired'],
    description:
      'retired: it learned samples of a forget request; its file is deleted and it is never served again (410). held: the catastrophic-forgetting ' +
      'guard held it (see held); it is served only when asked for by number until POST /v1/models/{id}/versions/{version}/release',
  })
  state!: 'live' | 'held' | 'retired';
  @ApiProperty({ required: false, type: Object, description: "the guard's figures (UNLEARN_HELD, or LEARN_HELD with cause and fromVersion) when it held the version, and ledgerIndex" })
  held?: HeldFigures & { ledgerIndex: number };
  @ApiProperty({ required: false, description: 'the VERSION_RELEASED entry of a held version released' }) releasedLedgerIndex?: number;
  @ApiProperty({ required: false, type: [String], description: 'the forget requests whose samples the retired version learned' }) retiredBy?: string[];
  @ApiProperty({ required: false }) retiredAt?: string;
  @ApiProperty({ required: false, description: 'index of its VERSION_RETIRED entry (absent for a moment while the retirement is being logged)' })
  retireLedgerIndex?: number;
  @ApiProperty({
    required: false,
    type: Object,
    description:
      "what the version promises about the samples it forgot, as its UNLEARN_COMPLETED.guarantee: {kind: 'exact'}, {kind: 'certified', epsilon, delta, " +
      "residualBound, budget, budgetUsed, retrained} or {kind: 'approximate', algorithm, steps} (approximately forgotten: no guarantee, only evidence)",
  })
  guarantee?: UnlearnGuarantee;
  @ApiProperty({
    required: false,
    type: [ShardTaskDto],
    description:
      'which worker trained which shard of it, when shard tasks trained it (SHARD_TASKS, two or more shards to train): the shards a worker trained ' +
      'for this version, each with the seconds its task took; absent when one worker trained every shard itself',
  })
  tasks?: ShardTaskDto[];
}

export class ModelSummaryDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) datasetId!: string;
  @ApiProperty({ type: Object, description: 'the configuration given at creation' }) config!: Record<string, unknown>;
  @ApiProperty({
    type: [Number],
    description:
      'the epochs each slice r trains (on slices 0..r), resolved: the SISA paper\'s schedule unless epochsPerSlice was given; ' +
      '`epochs` on every slice for a model created before epochsPerSlice existed',
  })
  epochsPerSlice!: number[];
  @ApiProperty({
    required: false,
    type: Object,
    description:
      'DP-SGD models: the privacy request resolved at creation (sampleRate q, stepsPerEpoch, noiseMultiplier σ solved for epsilon, ' +
      'and noiseSeed, the secret the sampling and the noise are drawn from, which a replay needs)',
  })
  privacy?: PrivacySettings;
  @ApiProperty({
    required: false,
    type: Object,
    description:
      'certified models: the settings resolved at creation (sigma, and noiseSeed, the 256-bit secret the objective perturbation is drawn from, which a replay needs)',
  })
  certified?: CertifiedSettings;
  @ApiProperty({ enum: MODEL_STATES }) state!: ModelState;
  @ApiProperty({ required: false }) error?: string;
  @ApiProperty({ format: 'uuid' }) jobId!: string;
  @ApiProperty({ nullable: true, type: Number }) latestVersion!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'the version served without a version number: the latest, or the one a rollback made current' })
  currentVersion!: number | null;
  @ApiProperty() createdAt!: string;
}

export class ModelResponseDto extends ModelSummaryDto {
  @ApiProperty({ type: [ModelVersionResponseDto] }) versions!: ModelVersionResponseDto[];
}

export class PredictDto {
  @ApiProperty({ type: 'array', items: { type: 'array', items: { type: 'number' } }, description: `rows of features, 1..${MAX_PREDICT_ROWS}` })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_PREDICT_ROWS)
  @IsArray({ each: true, message: 'inputs must be an array of arrays of numbers' })
  inputs!: number[][];

  @ApiProperty({ required: false, description: 'a published version (default: the latest)' })
  @IsOptionalField()
  @IsInt()
  @Min(1)
  version?: number;
}

export class PredictionResponseDto {
  @ApiProperty() modelVersion!: number;
  @ApiProperty() onnxSha256!: string;
  @ApiProperty({ type: [Number], description: 'predicted class per row' }) predictions!: number[];
  @ApiProperty({ type: 'array', items: { type: 'array', items: { type: 'number' } }, description: 'class probabilities per row' }) probabilities!: number[][];
}

/** The engine's config for a request on a dataset (the engine checks it again, naming its fields). */
export function toEngineConfig(body: CreateModelDto, dataset: DatasetEntity): TrainingConfigInput {
  // Certified removal trains by L-BFGS: no SGD settings; its `certified` settings are resolved by the service (n, the noise seed).
  if (body.method === 'certified') return { method: 'certified', model: 'logistic-regression', numFeatures: dataset.features, numClasses: dataset.classes, seed: body.seed };
  const config: TrainingConfigInput = {
    method: body.method === 'sisa' ? 'sisa' : 'full-retrain',
    model: body.architecture.type === 'logreg' ? 'logistic-regression' : 'mlp',
    numFeatures: dataset.features,
    numClasses: dataset.classes,
    epochs: body.epochs,
    batchSize: body.batchSize,
    learningRate: body.learningRate,
    seed: body.seed,
  };
  if (body.architecture.hidden !== undefined) config.hiddenLayers = [...body.architecture.hidden];
  if (body.shards !== undefined) config.shards = body.shards;
  if (body.slices !== undefined) config.slices = body.slices;
  if (body.epochsPerSlice !== undefined) config.epochsPerSlice = body.epochsPerSlice;
  return config;
}

/** The epochs each slice of a model trains, from its stored engine config (see resolveStoredSchedule). */
export function epochsPerSliceOf(engineConfig: Record<string, unknown>): number[] {
  return epochsOfSlices(normalizeConfig(resolveStoredSchedule(engineConfig as unknown as TrainingConfigInput)));
}

export function toModelVersionResponse(entity: ModelVersionEntity, tasks: TrainedShard[] = []): ModelVersionResponseDto {
  const out: ModelVersionResponseDto = {
    version: entity.version,
    onnxSha256: entity.onnxSha256,
    manifestHash: entity.manifestHash,
    createdAt: entity.createdAt.toISOString(),
    metrics: entity.metrics,
    ledgerIndex: Number(entity.ledgerIndex),
    reflectsForgetRequests: entity.reflectsForgetRequests,
    state: entity.retiredAt !== null ? 'retired' : isHeld(entity) ? 'held' : 'live',
  };
  if (entity.held !== null && entity.heldLedgerIndex !== null) out.held = { ...entity.held, ledgerIndex: Number(entity.heldLedgerIndex) };
  if (entity.releasedLedgerIndex !== null) out.releasedLedgerIndex = Number(entity.releasedLedgerIndex);
  if (entity.unlearnLedgerIndex !== null) out.unlearnLedgerIndex = Number(entity.unlearnLedgerIndex);
  if (entity.evidence !== null) out.evidence = entity.evidence;
  if (entity.retiredAt !== null) {
    out.retiredBy = entity.retiredBy;
    out.retiredAt = entity.retiredAt.toISOString();
    if (entity.retireLedgerIndex !== null) out.retireLedgerIndex = Number(entity.retireLedgerIndex);
  }
  if (entity.evidenceLedgerIndex !== null) out.evidenceLedgerIndex = Number(entity.evidenceLedgerIndex);
  if (entity.guarantee !== null) out.guarantee = entity.guarantee;
  const trained = tasks.filter((t) => t.version === entity.version);
  if (trained.length > 0)
    out.tasks = trained.map((t) => ({ shard: t.shard, worker: t.workerId, seconds: t.seconds === null ? null : Math.round(t.seconds * 100) / 100 }));
  return out;
}

export function toModelSummary(entity: ModelEntity, latestVersion: number | null): ModelSummaryDto {
  const out: ModelSummaryDto = {
    id: entity.id,
    datasetId: entity.datasetId,
    config: entity.config,
    epochsPerSlice: epochsPerSliceOf(entity.engineConfig),
    state: entity.state,
    jobId: entity.jobId,
    latestVersion,
    currentVersion: entity.currentVersion ?? latestVersion,
    createdAt: entity.createdAt.toISOString(),
  };
  if (entity.error !== null) out.error = entity.error;
  const privacy = (entity.engineConfig as { privacy?: PrivacySettings }).privacy;
  if (privacy) out.privacy = privacy;
  const certified = (entity.engineConfig as { certified?: CertifiedSettings }).certified;
  if (certified) out.certified = certified;
  return out;
}

export function toModelResponse(entity: ModelEntity, versions: ModelVersionEntity[], tasks: TrainedShard[] = []): ModelResponseDto {
  return {
    ...toModelSummary(entity, versions.length > 0 ? versions[versions.length - 1].version : null),
    versions: versions.map((v) => toModelVersionResponse(v, tasks)),
  };
}
