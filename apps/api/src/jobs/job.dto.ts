import { ApiProperty } from '@nestjs/swagger';
import { JOB_STATES, JOB_TYPES, JobEntity, JobState } from './job.entity';
import { TASK_STATES, TaskRow, TaskState } from './job-task.repository';

/** One shard task of a job: a shard of a model version, trained by one worker (one pg-boss job each). */
export class JobTaskResponseDto {
  @ApiProperty({ format: 'uuid' }) modelId!: string;
  @ApiProperty({ description: 'the model version it trains' }) version!: number;
  @ApiProperty() shard!: number;
  @ApiProperty({ enum: TASK_STATES }) state!: TaskState;
  @ApiProperty({ nullable: true, type: String, description: 'the worker running or that ran it (WORKER_NAME, or host:pid, and a random suffix); null while queued' })
  worker!: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'seconds its last attempt took (so far, while running)' }) seconds!: number | null;
  @ApiProperty({ description: 'attempts started' }) attempts!: number;
  @ApiProperty({ description: 'done fraction, 0..1' }) progress!: number;
  @ApiProperty({ required: false, description: 'why its last attempt failed' }) error?: string;
}

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
  @ApiProperty({
    type: [JobTaskResponseDto],
    description: 'its shard tasks, when it trains shards on several workers (SHARD_TASKS=on and two or more shards of a version to train): which worker trains which shard',
  })
  tasks!: JobTaskResponseDto[];
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}

export function toJobTaskResponse(task: TaskRow): JobTaskResponseDto {
  return {
    modelId: task.modelId,
    version: task.version,
    shard: task.shard,
    state: task.state,
    worker: task.state === 'queued' ? null : task.workerId,
    seconds: task.state === 'queued' || task.seconds === null ? null : Math.round(task.seconds * 100) / 100,
    attempts: task.attempts,
    progress: task.progress,
    ...(task.error !== null && task.state !== 'completed' ? { error: task.error } : {}),
  };
}

export function toJobResponse(entity: JobEntity, tasks: TaskRow[] = []): JobResponseDto {
  const out: JobResponseDto = {
    id: entity.id,
    type: entity.type,
    state: entity.state,
    progress: entity.progress,
    createdAt: entity.createdAt.toISOString(),
    updatedAt: entity.updatedAt.toISOString(),
    tasks: tasks.map(toJobTaskResponse),
  };
  if (entity.state === 'running' && entity.etaSeconds !== null) out.etaSeconds = Math.round(entity.etaSeconds * 10) / 10;
  if (entity.error !== null) out.error = entity.error;
  if (entity.result !== null) out.result = entity.result;
  return out;
}
