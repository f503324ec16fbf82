import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When a sample expires (its own expiresAt, or its dataset's retentionDays after the upload, the earlier): the
 * retention sweep files a forget request (reason `retention`) for expired samples. Kept beside the sealed payload,
 * so that erasing the sample erases it too; only an instant, nothing of the sample.
 */
export class SampleExpiry1764217210000 implements MigrationInterface {
  name = 'SampleExpiry1764217210000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sample_payloads ADD COLUMN expires_at timestamptz`);
    await q.query(`CREATE INDEX sample_payloads_expiry ON sample_payloads (expires_at) WHERE expires_at IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX sample_payloads_expiry`);
    await q.query(`ALTER TABLE sample_payloads DROP COLUMN expires_at`);
  }
}
