import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { JobResponseDto, toJobResponse } from './job.dto';
import { JobEntity, JobType } from './job.entity';
import { JOB_QUEUE, JobQueue } from './job.queue';

/** Creates jobs (a row, then the queue message with the same id) and describes them. */
@Injectable()
export class JobService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(JOB_QUEUE) private readonly queue: JobQueue,
  ) {}

  /** Stores a queued job in `manager`'s transaction; send it with `send` once that is committed. */
  async insert(manager: EntityManager, id: string, type: JobType, payload: Record<string, unknown>, createdBy: string | null): Promise<void> {
    await manager.query(`INSERT INTO jobs (id, type, state, payload, created_by) VALUES ($1, $2, 'queued', $3, $4)`, [id, type, JSON.stringify(payload), createdBy]);
  }

  async send(id: string): Promise<void> {
    const job = await this.dataSource.getRepository(JobEntity).findOneByOrFail({ id });
    await this.queue.send(job.type, { jobId: job.id, ...job.payload }, { id: job.id });
  }

  async get(id: string): Promise<JobResponseDto> {
    const job = await this.dataSource.getRepository(JobEntity).findOneBy({ id });
    if (!job) throw new NotFoundException(`no job with id ${id}`);
    return toJobResponse(job);
  }
}
