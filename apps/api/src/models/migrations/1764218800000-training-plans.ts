import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A training's plan: the ordered internal ids (sample_commitments.id) of the samples it trains on and of its test
 * set, stored before the engine's first ledger append and cleared once version 1 is recorded. A training stopped
 * after its MODEL_PUBLISHED is durable but before its version row trains exactly this plan again (the same bytes
 * as the log records), whatever was uploaded or forgotten since. Ids only: no externalId, no feature.
 */
export class TrainingPlans1764218800000 implements MigrationInterface {
  name = 'TrainingPlans1764218800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models ADD COLUMN training_plan jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models DROP COLUMN training_plan`);
  }
}
