import { BadRequestException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { APPROXIMATE_ALGORITHMS, type ApproximateAlgorithm, type UnlearnGuarantee } from '@lethe/events';
import { IsUuid } from '../common/uuid';
import { EntryReceiptDto } from '../receipts/receipt.dto';
import { JobEntity } from '../jobs/job.entity';
import { FORGET_REQUEST_STATES, ForgetApproach, ForgetRequestEntity, ForgetRequestState } from './forget-request.entity';

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
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_FORGET_EXTERNAL_IDS)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxLength(200, { each: true })
  externalIds?: string[];

  @ApiProperty({ required: false, maxLength: 200, description: 'forget every sample of this subject; or give externalIds' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  subjectId?: string;

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
  @IsOptional()
  @IsIn(['exact', 'approximate'], { message: 'approach must be one of: exact, approximate' })
  approach?: 'exact' | 'approximate';

  @ApiProperty({
    required: false,
    enum: APPROXIMATE_ALGORITHMS,
    description: 'approach approximate: finetune (on the retained samples), neggrad+ (Kurmanji et al. 2023) or scrub (Kurmanji et al. 2023)',
  })
  @IsOptional()
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
  @IsOptional()
  @IsIn(['exact', 'none'], { message: 'then must be one of: exact, none' })
  then?: 'exact' | 'none';
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
  @ApiProperty() createdAt!: string;
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
}

export function toCreatedForgetRequestResponse(entity: ForgetRequestEntity): CreatedForgetRequestResponseDto {
  return { id: entity.id, state: entity.state, ledgerIndex: Number(entity.ledgerIndex), leafHash: entity.leafHash!, jobId: entity.jobId };
}

export function toForgetRequestSummary(entity: ForgetRequestEntity): ForgetRequestSummaryDto {
  return {
    ...toCreatedForgetRequestResponse(entity),
    datasetId: entity.datasetId,
    reason: entity.reason,
    ...approachOf(entity.approach),
    createdAt: entity.createdAt.toISOString(),
  };
}

function approachOf(approach: ForgetApproach | null): Pick<ForgetRequestSummaryDto, 'approach' | 'algorithm' | 'then'> {
  return approach ? { approach: 'approximate', algorithm: approach.algorithm, then: approach.then } : { approach: 'exact' };
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
): ForgetRequestResponseDto {
  const out: ForgetRequestResponseDto = {
    ...toForgetRequestSummary(entity),
    samples,
    modelVersions: outcome.modelVersions,
    evidence: outcome.evidence,
    progress: entity.state === 'completed' ? 1 : entity.state === 'received' || job === null ? 0 : job.progress,
    receipt,
  };
  if (entity.state === 'failed' && entity.error !== null) out.error = entity.error;
  if (entity.state === 'unlearning' && job?.state === 'running' && job.etaSeconds !== null)
    out.etaSeconds = Math.round(job.etaSeconds * 10) / 10;
  return out;
}
