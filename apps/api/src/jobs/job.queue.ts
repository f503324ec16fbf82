import { Logger } from '@nestjs/common';
import PgBoss from 'pg-boss';
import type { EntityManager } from 'typeorm';
import { sendJob, sendJobWithin } from './job.notifier';

export const JOB_QUEUE = Symbol('JOB_QUEUE');

/** Where the service sends work for the workers; pg-boss in production, something else in tests. */
export interface JobQueue {
  /** Sends a job; `id` makes sending the same job again harmless. */
  send(name: string, data: object, options?: { id?: string; singletonKey?: string }): Promise<void>;
  /** Sends a job as part of the transaction of `manager` (nothing is sent if it rolls back); absent when the queue cannot. */
  sendWithin?(manager: EntityManager, name: string, data: object, options?: { id?: string }): Promise<void>;
}

/** Drops every job it is given (no queue configured): jobs stay `queued` in their table, and a worker's start-up sends them again. */
export class DroppingJobQueue implements JobQueue {
  private readonly logger = new Logger('Jobs');

  async send(name: string, data: object): Promise<void> {
    this.logger.debug(`job ${name} ${JSON.stringify(data)} waits for a worker`);
  }
}

/** A pg-boss queue: jobs are rows in the database; a NOTIFY wakes the workers, which also poll. */
export class PgBossJobQueue implements JobQueue {
  constructor(private readonly boss: PgBoss) {}

  async send(name: string, data: object, options: { id?: string; singletonKey?: string } = {}): Promise<void> {
    await sendJob(this.boss, name, data, options);
  }

  async sendWithin(manager: EntityManager, name: string, data: object, options: { id?: string } = {}): Promise<void> {
    await sendJobWithin(this.boss, manager, name, data, options);
  }
}
