import { MigrationInterface, QueryRunner } from 'typeorm';

/** POST /v1/models/:id/learn marks the model; the dataset's next unlearning pass learns its new samples and clears it. */
export class ModelLearnRequests1764217230000 implements MigrationInterface {
  name = 'ModelLearnRequests1764217230000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models ADD COLUMN learn_requested_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models DROP COLUMN learn_requested_at`);
  }
}
