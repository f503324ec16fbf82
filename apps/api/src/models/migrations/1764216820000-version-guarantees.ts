import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What a version made by unlearning promises about the forgotten samples: its UNLEARN_COMPLETED.guarantee
 * ({kind: 'exact'}, certified removal's budget, or approximate unlearning's algorithm). Null for a version that
 * training published, and for versions unlearned before guarantees were recorded (those were exact).
 */
export class VersionGuarantees1764216820000 implements MigrationInterface {
  name = 'VersionGuarantees1764216820000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions ADD COLUMN guarantee jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE model_versions DROP COLUMN guarantee`);
  }
}
