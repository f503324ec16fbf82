import { MigrationInterface, QueryRunner } from 'typeorm';
import { scrubDroppedData } from '@lethe/ledger';

/** Where a shard task's input held a noise seed in clear: its config's privacy and certified parts. */
const TASK_SEEDS = `#- '{config,privacy,noiseSeed}' #- '{config,certified,noiseSeed}'`;

/**
 * Shard tasks are queued without their model's noise seeds (the worker opens them from models.noise_seeds, sealed);
 * before, job_tasks.input held a DP-SGD model's privacy.noiseSeed in clear. This drops the seeds from the inputs of
 * the tasks stored then, in one transaction; then ANALYZE and VACUUM FULL of job_tasks and pg_statistic (as the
 * sealing of models' seeds does) let PostgreSQL drop the old row versions. A job retried after this finds those
 * tasks under another input hash (it was computed with the seed) and trains their shards again: same bytes.
 */
export class JobTasksWithoutNoiseSeeds1764217800000 implements MigrationInterface {
  name = 'JobTasksWithoutNoiseSeeds1764217800000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    const holding = `input->'config'->'privacy' ? 'noiseSeed' OR input->'config'->'certified' ? 'noiseSeed'`;
    await q.startTransaction();
    let changed: number;
    try {
      [{ changed }] = await q.query(`SELECT count(*)::int AS changed FROM job_tasks WHERE ${holding}`);
      await q.query(`UPDATE job_tasks SET input = input ${TASK_SEEDS} WHERE ${holding}`);
      await q.commitTransaction();
    } catch (error) {
      await q.rollbackTransaction();
      throw error;
    }
    if (changed > 0) {
      await q.query('ANALYZE job_tasks');
      await scrubDroppedData(q, ['job_tasks']);
    }
  }

  async down(): Promise<void> {
    // Nothing to put back: the worker reads the seeds from the model's sealed row either way.
  }
}
