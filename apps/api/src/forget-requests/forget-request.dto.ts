import { BadRequestException } from '@nestjs/common';
import { ForgetExtensionDto, toForgetExtension } from './forget-request-extension';
import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsNumber, IsString, MaxLength, MinLength } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';
import { APPROXIMATE_ALGORITHMS, type ApproximateAlgorithm, type UnlearnGuarantee } from '@lethe/events';
import { IsUuid } from '../common/uuid';
import { EntryReceiptDto } from '../receipts/receipt.dto';
import { JobEntity } from '../jobs/job.entity';
import { FORGET_MODES, FORGET_REQUEST_STATES, ForgetApproach, ForgetMode, ForgetRequestEntity, ForgetRequestState } from './forget-request.entity';

/** A suspension's grace period: default and most, in days. */
export const DEFAULT_GRACE_DAYS = 30;
export const MAX_GRACE_DAYS = 90;

export const MAX_FORGET_EXTERNAL_IDS = 10_000;

export class CreateForgetRequestDto {
  @ApiProperty({ format: 'uuid' })
  @IsUuid('datasetId')
  datasetId!: string;

  @ApiProperty({
    required: false,
    type: [String],
    description: `the samples to forget, by externalId (1..${MAX_FORGET_EXTERNAL_IDS}); or give subjectId`,
  })
  @IsOptionalField()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_FORGET_EXTERNAL_IDS)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxLength(200, { each: true })
  externalIds?: string[];

  @ApiProperty({ required: false, maxLength: 200, description: 'forget every sample of this subject; or give externalIds' })
  @IsOptionalField()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  subjectId?: string;

  @ApiProperty({
    required: false,
    type: [Number],
    description:
      'feature-level unlearning (instead of externalIds or subjectId): the input columns every model of the dataset must stop reading; ' +
      'each model is trained again without them (the input keeps its width, the columns are masked to 0 in training and in the published graph)',
    example: [2],
  })
  @IsOptionalField()
  features?: unknown;

  @ApiProperty({ maxLength: 1000, description: 'why (goes into the public log: no personal data here)', example: 'GDPR art. 17 request' })
  @IsString()
  @MinLength(1)
  @MaxLength(1000)
  reason!: string;

  @ApiProperty({
    required: false,
    enum: ['exact', 'approximate'],
    default: 'exact',
    description:
      'exact (the default: SISA and full models retrain what learned the samples, certified models take a Newton step within their budget), or ' +
      'approximate (SISA and full models only): `algorithm` runs for seconds on the published weights and publishes an approximately forgotten ' +
      'version (no guarantee, only evidence), followed by the exact pass unless `then` is none',
  })
  @IsOptionalField()
  @IsIn(['exact', 'approximate'], { message: 'approach must be one of: exact, approximate' })
  approach?: 'exact' | 'approximate';

  @ApiProperty({
    required: false,
    enum: APPROXIMATE_ALGORITHMS,
    description: 'approach approximate: finetune (on the retained samples), neggrad+ (Kurmanji et al. 2023) or scrub (Kurmanji et al. 2023)',
  })
  @IsOptionalField()
  @IsIn(APPROXIMATE_ALGORITHMS as unknown as string[], { message: `algorithm must be one of: ${APPROXIMATE_ALGORITHMS.join(', ')}` })
  algorithm?: ApproximateAlgorithm;

  @ApiProperty({
    required: false,
    enum: ['exact', 'none'],
    default: 'exact',
    description:
      'approach approximate: exact (the default) also runs the exact pass, whose version retires the approximate one; none leaves the model ' +
      'approximately forgotten (its data is then erased, so it can never be unlearned exactly from the samples)',
  })
  @IsOptionalField()
  @IsIn(['exact', 'none'], { message: 'then must be one of: exact, none' })
  then?: 'exact' | 'none';

  @ApiProperty({
    required: false,
    enum: FORGET_MODES,
    default: 'forget',
    description:
      'forget (the default: erased once unlearned), or suspend: unlearned from every model the same way, but the sealed data and keys are kept ' +
      'for graceDays, during which POST /v1/forget-requests/:id/restore learns the samples again; then (or on POST .../shred) the keys are destroyed',
  })
  @IsOptionalField()
  @IsIn(FORGET_MODES as unknown as string[], { message: `mode must be one of: ${FORGET_MODES.join(', ')}` })
  mode?: ForgetMode;

  @ApiProperty({ required: false, default: DEFAULT_GRACE_DAYS, description: `mode suspend: days (0 < graceDays <= ${MAX_GRACE_DAYS}) before the keys are destroyed` })
  @IsOptionalField()
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: `graceDays must be a number of days, 0 < graceDays <= ${MAX_GRACE_DAYS}` })
  graceDays?: number;
}

/** The grace period a body asks for: null for mode forget; 400 naming the field that does not fit. */
export function graceDaysOfBody(body: CreateForgetRequestDto, approach: ForgetApproach | null): number | null {
  if (body.mode !== 'suspend') {
    if (body.graceDays !== undefined) throw new BadRequestException('graceDays: only mode "suspend" has a grace period');
    return null;
  }
  if (approach) throw new BadRequestException('approach: mode "suspend" unlearns exactly (approach "approximate" leaves traces a restore cannot undo)');
  const days = body.graceDays ?? DEFAULT_GRACE_DAYS;
  if (!(days > 0 && days <= MAX_GRACE_DAYS)) throw new BadRequestException(`graceDays must be a number of days, 0 < graceDays <= ${MAX_GRACE_DAYS}; got ${days}`);
  return days;
}

export class CreatedForgetRequestResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: FORGET_REQUEST_STATES }) state!: ForgetRequestState;
  @ApiProperty({ description: 'index of the FORGET_REQUESTED entry' }) ledgerIndex!: number;
  @ApiProperty() leafHash!: string;
  @ApiProperty({
    type: String,
    format: 'uuid',
    nullable: true,
    description: 'the unlearning pass that serves it (GET /v1/jobs/:id): the pass waiting for its dataset, then the one that took it',
  })
  jobId!: string | null;
}

export class ForgetRequestSummaryDto extends CreatedForgetRequestResponseDto {
  @ApiProperty({ format: 'uuid' }) datasetId!: string;
  @ApiProperty() reason!: string;
  @ApiProperty({ enum: ['exact', 'approximate'] }) approach!: 'exact' | 'approximate';
  @ApiProperty({ required: false, enum: APPROXIMATE_ALGORITHMS }) algorithm?: ApproximateAlgorithm;
  @ApiProperty({ required: false, enum: ['exact', 'none'] }) then?: 'exact' | 'none';
  @ApiProperty({ enum: FORGET_MODES }) mode!: ForgetMode;
  @ApiProperty({ required: false, description: 'mode suspend: the grace period, in days' }) graceDays?: number;
  @ApiProperty({ required: false, description: 'mode suspend: when the keys are destroyed unless restored first (ISO-8601; set once suspended)' })
  deadline?: string;
  @ApiProperty({ required: false, type: [Number], description: 'feature-level unlearning: the columns to stop reading' }) features?: number[];
  @ApiProperty() createdAt!: string;
  @ApiProperty({ required: false, type: ForgetExtensionDto, description: 'the extension notice (FORGET_EXTENDED), when one was filed' })
  extension?: ForgetExtensionDto;
}

/** One logged step of a request after its FORGET_REQUESTED entry (suspended, restored, shredded), with the entry's receipt. */
export class ForgetRequestStepDto {
  @ApiProperty({ enum: ['suspended', 'restored', 'shredded'] }) step!: 'suspended' | 'restored' | 'shredded';
  @ApiProperty() ledgerIndex!: number;
  @ApiProperty({ type: EntryReceiptDto }) receipt!: EntryReceiptDto;
}

export class ForgetRequestModelVersionDto {
  @ApiProperty({ format: 'uuid' }) modelId!: string;
  @ApiProperty() version!: number;
  @ApiProperty() onnxSha256!: string;
  @ApiProperty({ description: 'index of its MODEL_PUBLISHED entry' }) ledgerIndex!: number;
  @ApiProperty({ description: 'index of its UNLEARN_COMPLETED entry' }) unlearnLedgerIndex!: number;
  @ApiProperty({
    nullable: true,
    type: Number,
    description: 'index of its EVIDENCE_RECORDED entry: the evidence measured after the version was published (null until then, and where UNLEARN_COMPLETED carries it)',
  })
  evidenceLedgerIndex!: number | null;
  @ApiProperty({
    required: false,
    type: Object,
    description: "the UNLEARN_COMPLETED's guarantee ({kind: 'approximate', ...} is approximately forgotten; absent: exact, from before guarantees were recorded)",
  })
  guarantee?: UnlearnGuarantee;
}

export class ForgetRequestResponseDto extends ForgetRequestSummaryDto {
  @ApiProperty({ type: [String], description: 'commitments of the samples to forget, as in the entry' }) samples!: string[];
  @ApiProperty({
    type: [ForgetRequestModelVersionDto],
    description: 'model versions published without these samples (once unlearned), one per model that learned them',
  })
  modelVersions!: ForgetRequestModelVersionDto[];
  @ApiProperty({
    nullable: true,
    type: Object,
    description: 'unlearning evidence (accuracies, membership inference) by modelId, once unlearned',
  })
  evidence!: Record<string, unknown> | null;
  @ApiProperty({ required: false, description: 'why unlearning failed (state failed)' }) error?: string;
  @ApiProperty({ description: 'done fraction of its unlearning pass, 0..1 (1 once completed)' }) progress!: number;
  @ApiProperty({ required: false, description: 'estimated seconds left of its unlearning pass, while it runs' }) etaSeconds?: number;
  @ApiProperty({ type: EntryReceiptDto }) receipt!: EntryReceiptDto;
  @ApiProperty({ type: [ForgetRequestStepDto], description: 'the steps logged after FORGET_REQUESTED, in log order (mode suspend)' })
  steps!: ForgetRequestStepDto[];
}

export function toCreatedForgetRequestResponse(entity: Pick<ForgetRequestEntity, 'id' | 'state' | 'ledgerIndex' | 'leafHash' | 'jobId'>): CreatedForgetRequestResponseDto {
  return { id: entity.id, state: entity.state, ledgerIndex: Number(entity.ledgerIndex), leafHash: entity.leafHash!, jobId: entity.jobId };
}

export function toForgetRequestSummary(entity: ForgetRequestEntity): ForgetRequestSummaryDto {
  return {
    ...toCreatedForgetRequestResponse(entity),
    datasetId: entity.datasetId,
    reason: entity.reason,
    ...approachOf(entity.approach),
    mode: entity.mode,
    ...(entity.graceDays !== null ? { graceDays: entity.graceDays } : {}),
    ...(entity.deadline !== null ? { deadline: entity.deadline.toISOString() } : {}),
    ...(entity.features ? { features: entity.features } : {}),
    createdAt: entity.createdAt.toISOString(),
    ...extensionOf(entity),
  };
}

function extensionOf(entity: ForgetRequestEntity): Pick<ForgetRequestSummaryDto, 'extension'> {
  const extension = toForgetExtension(entity);
  return extension ? { extension } : {};
}

function approachOf(approach: ForgetApproach | null): Pick<ForgetRequestSummaryDto, 'approach' | 'algorithm' | 'then'> {
  return approach ? { approach: 'approximate', algorithm: approach.algorithm, then: approach.then } : { approach: 'exact' };
}

/**
 * The columns a feature-level body names, checked against the dataset's width: a non-empty array of distinct
 * integer column indexes, not every column; sorted. 400 naming the field (nothing is logged).
 */
export function featuresOfBody(body: CreateForgetRequestDto, width: number): number[] {
  const value = body.features;
  if (body.externalIds !== undefined || body.subjectId !== undefined)
    throw new BadRequestException('features: give features (a forget of columns) or externalIds/subjectId (a forget of samples), not both');
  if (body.approach !== undefined || body.algorithm !== undefined || body.then !== undefined)
    throw new BadRequestException('features: a forget of columns retrains every model without them; approach, algorithm and then do not apply');
  if ((body.mode !== undefined && body.mode !== 'forget') || body.graceDays !== undefined)
    throw new BadRequestException('features: a forget of columns is not suspended; mode suspend and graceDays do not apply');
  if (!Array.isArray(value) || value.length === 0) throw new BadRequestException('features must be a non-empty array of column indexes');
  const seen = new Set<number>();
  value.forEach((v: unknown, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new BadRequestException(`features[${i}] must be an integer column index, got ${JSON.stringify(v)}`);
    if (v < 0 || v >= width) throw new BadRequestException(`features[${i}] is ${v}, beyond the dataset's ${width} columns (0..${width - 1})`);
    if (seen.has(v)) throw new BadRequestException(`features[${i}] names column ${v} twice`);
    seen.add(v);
  });
  if (seen.size === width) throw new BadRequestException(`features names every one of the ${width} columns: nothing would be left to learn from`);
  return [...seen].sort((a, b) => a - b);
}

/** The approach a body asks for, checked: null for exact; 400 naming the field that does not fit. */
export function approachOfBody(body: CreateForgetRequestDto): ForgetApproach | null {
  if (body.approach !== 'approximate') {
    if (body.algorithm !== undefined) throw new BadRequestException('algorithm: only approach "approximate" takes an algorithm');
    if (body.then !== undefined) throw new BadRequestException('then: only approach "approximate" is followed by another pass');
    return null;
  }
  if (body.algorithm === undefined)
    throw new BadRequestException(`algorithm: approach "approximate" needs one of ${APPROXIMATE_ALGORITHMS.join(', ')}`);
  return { approach: 'approximate', algorithm: body.algorithm, then: body.then ?? 'exact' };
}

export interface ForgetRequestOutcome {
  modelVersions: ForgetRequestModelVersionDto[];
  evidence: Record<string, unknown> | null;
}

export function toForgetRequestResponse(
  entity: ForgetRequestEntity,
  samples: string[],
  receipt: EntryReceiptDto,
  outcome: ForgetRequestOutcome = { modelVersions: [], evidence: null },
  job: JobEntity | null = null,
  steps: ForgetRequestStepDto[] = [],
): ForgetRequestResponseDto {
  const out: ForgetRequestResponseDto = {
    ...toForgetRequestSummary(entity),
    samples,
    modelVersions: outcome.modelVersions,
    evidence: outcome.evidence,
    progress: entity.state === 'completed' ? 1 : entity.state === 'received' || job === null ? 0 : job.progress,
    receipt,
    steps,
  };
  if (entity.state === 'failed' && entity.error !== null) out.error = entity.error;
  if (entity.state === 'unlearning' && job?.state === 'running' && job.etaSeconds !== null)
    out.etaSeconds = Math.round(job.etaSeconds * 10) / 10;
  return out;
}
