import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Requests counted per client (`key:<API key id>` or `ip:<address>`) and window of RATE_LIMIT_WINDOW_MS,
 * shared by every process on the database. UNLOGGED: counts are not worth a WAL write each (a crash
 * forgets the current minute's counts, which only lets a client start afresh).
 * Windows that ended are deleted by the processes as they go.
 */
export class CreateRateLimitHits1764216530000 implements MigrationInterface {
  name = 'CreateRateLimitHits1764216530000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE rate_limit_hits (
        tracker text NOT NULL,
        window_start timestamptz NOT NULL,
        hits integer NOT NULL,
        PRIMARY KEY (tracker, window_start)
      )`);
    await q.query(`CREATE INDEX rate_limit_hits_window ON rate_limit_hits (window_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limit_hits`);
  }
}
