import { Logger } from '@nestjs/common';
import PgBoss from 'pg-boss';
import { JobConfig } from './job.config';
import { BIAS_SCAN_JOB, SHARD_JOB, TRAIN_JOB, UNLEARN_JOB } from './job.entity';

/** How often pg-boss delivers a shard task again (its row counts the attempts that matter). */
export const SHARD_MESSAGE_RETRIES = 1000;

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
  // Both queues keep pg-boss's `standard` policy. Unlearning passes are deduplicated in the `jobs` table (one
  // waiting pass per dataset, its id as the pg-boss id), not with the `stately` policy and a singletonKey:
  // pg-boss 10 fetches the oldest job of a queue and, under `stately`, fails the whole fetch when activating
  // it would make a second active job of its key, so one dataset's waiting pass would stop every worker from
  // taking any other dataset's pass until the running one ends (timgit/pg-boss#535).
  for (const name of [TRAIN_JOB, UNLEARN_JOB, BIAS_SCAN_JOB]) {
    await boss.createQueue(name, { name, ...options });
    await boss.updateQueue(name, { name, ...options });
  }
  // A shard task's attempts are counted in its row (job_tasks), against JOB_RETRY_LIMIT; pg-boss only carries
  // it, and may carry it more often: a worker whose artifact store is out of reach hands it back uncounted.
  const shard = { ...options, retryLimit: SHARD_MESSAGE_RETRIES };
  await boss.createQueue(SHARD_JOB, { name: SHARD_JOB, ...shard });
  await boss.updateQueue(SHARD_JOB, { name: SHARD_JOB, ...shard });
  return boss;
}
