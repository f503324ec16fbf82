import { ApiProperty } from '@nestjs/swagger';
import { JOB_STATES, JOB_TYPES, JobEntity, JobState } from './job.entity';

export class JobResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: JOB_TYPES, description: 'lethe.train: a model training; lethe.unlearn: an unlearning pass over a dataset' })
  type!: string;
  @ApiProperty({ enum: JOB_STATES }) state!: JobState;
  @ApiProperty({ description: 'done fraction, 0..1' }) progress!: number;
  @ApiProperty({ required: false, description: 'estimated seconds left while running' }) etaSeconds?: number;
  @ApiProperty({ required: false, description: 'why the job failed (or why its last attempt failed, while it waits for a retry)' })
  error?: string;
  @ApiProperty({ required: false, type: Object, description: 'what the job produced, once completed' }) result?: Record<string, unknown>;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}

export function toJobResponse(entity: JobEntity): JobResponseDto {
  const out: JobResponseDto = {
    id: entity.id,
    type: entity.type,
    state: entity.state,
    progress: entity.progress,
    createdAt: entity.createdAt.toISOString(),
    updatedAt: entity.updatedAt.toISOString(),
  };
  if (entity.state === 'running' && entity.etaSeconds !== null) out.etaSeconds = Math.round(entity.etaSeconds * 10) / 10;
  if (entity.error !== null) out.error = entity.error;
  if (entity.result !== null) out.result = entity.result;
  return out;
}
