import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { IsUuid } from '../common/uuid';
import { EntryReceiptDto } from '../receipts/receipt.dto';
import { JobEntity } from '../jobs/job.entity';
import { FORGET_REQUEST_STATES, ForgetRequestEntity, ForgetRequestState } from './forget-request.entity';

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
    createdAt: entity.createdAt.toISOString(),
  };
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
