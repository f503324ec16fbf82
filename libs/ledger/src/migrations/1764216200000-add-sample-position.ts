import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each sample's position among the leaves of its SAMPLES_COMMITTED batch, so that an inclusion proof of
 * its commitment in the batch's commitmentsRoot can be rebuilt from the stored commitments of the batch
 * (receipts). Positions survive shredding: the commitment and its place stay, the data goes.
 */
export class AddSamplePosition1764216200000 implements MigrationInterface {
  name = 'AddSamplePosition1764216200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE samples ADD COLUMN batch_position integer CHECK (batch_position >= 0)`);
    await q.query(`CREATE UNIQUE INDEX samples_batch_position ON samples (ledger_index, batch_position) WHERE ledger_index IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX samples_batch_position`);
    await q.query(`ALTER TABLE samples DROP COLUMN batch_position`);
  }
}
