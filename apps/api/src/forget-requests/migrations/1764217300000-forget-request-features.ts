import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Feature-level unlearning: the input columns a forget request asks every model of its dataset to stop reading
 * (ascending, distinct); null for a forget of samples. Datasets may declare the column holding a protected group
 * id (bias identification, fairness figures); null when they do not.
 */
export class ForgetRequestFeatures1764217300000 implements MigrationInterface {
  name = 'ForgetRequestFeatures1764217300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE forget_requests ADD COLUMN features integer[]`);
    await q.query(`ALTER TABLE datasets ADD COLUMN protected_feature integer CHECK (protected_feature >= 0 AND protected_feature < features)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE datasets DROP COLUMN protected_feature`);
    await q.query(`ALTER TABLE forget_requests DROP COLUMN features`);
  }
}
