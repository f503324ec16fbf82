import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { JobResponseDto, toJobResponse } from './job.dto';
import { JobType } from './job.entity';
import { JOB_QUEUE, JobQueue } from './job.queue';
import { JobRepository } from './job.repository';
import { JobTaskRepository } from './job-task.repository';

/** Creates jobs (a row, then the queue message with the same id) and describes them. */
@Injectable()
export class JobService {
  constructor(
    private readonly jobs: JobRepository,
    private readonly tasks: JobTaskRepository,
    @Inject(JOB_QUEUE) private readonly queue: JobQueue,
  ) {}

  /** Stores a queued job in `manager`'s transaction; send it with `send` once that is committed. */
  async insert(manager: EntityManager, id: string, type: JobType, payload: Record<string, unknown>, createdBy: string | null): Promise<void> {
    await this.jobs.insert(manager, id, type, payload, createdBy);
  }

  async send(id: string): Promise<void> {
    const job = await this.jobs.findById(id);
    if (!job) throw new Error(`no job with id ${id}`);
    await this.queue.send(job.type, { jobId: job.id, ...job.payload }, { id: job.id });
  }

  async get(id: string): Promise<JobResponseDto> {
    const job = await this.jobs.findById(id);
    if (!job) throw new NotFoundException(`no job with id ${id}`);
    return toJobResponse(job, await this.tasks.findByJob(id));
  }
}
