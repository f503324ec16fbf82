import { MigrationInterface, QueryRunner } from 'typeorm';

/** A dataset's retention: its samples expire retention_days after their upload (null: kept until forgotten). */
export class DatasetRetention1764217220000 implements MigrationInterface {
  name = 'DatasetRetention1764217220000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE datasets ADD COLUMN retention_days double precision CHECK (retention_days > 0 AND retention_days <= 36500)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE datasets DROP COLUMN retention_days`);
  }
}
