import { Logger } from '@nestjs/common';
import PgBoss from 'pg-boss';
import { UNLEARN_JOB } from '../forget-requests/forget-request.queue';
import { JobConfig } from './job.config';
import { TRAIN_JOB } from './job.entity';

/**
 * Starts pg-boss on the service's database (its own schema `pgboss` and its own small pool) and makes
 * sure the queues exist with the configured retry and expiry. Every process (service, workers) calls it;
 * pg-boss serializes its own schema migration.
 */
export async function startJobBoss(url: string, config: JobConfig): Promise<PgBoss> {
  const logger = new Logger('Jobs');
  const boss = new PgBoss({ connectionString: url, max: 4, maintenanceIntervalSeconds: config.maintenanceSeconds, schedule: false });
  boss.on('error', (error) => {
    // 57P01: the server is shutting down (the embedded PostgreSQL stops on SIGTERM while we stop too).
    if ((error as { code?: string }).code === '57P01') logger.debug(`pg-boss: ${error.message}`);
    else logger.error(`pg-boss: ${error.message}`);
  });
  await boss.start();
  const options = {
    retryLimit: config.retryLimit,
    retryDelay: config.retryDelaySeconds,
    retryBackoff: false,
    expireInSeconds: config.expireSeconds,
  };
  for (const name of [TRAIN_JOB, UNLEARN_JOB]) {
    await boss.createQueue(name, { name, ...options });
    await boss.updateQueue(name, { name, ...options });
  }
  return boss;
}
