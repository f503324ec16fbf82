import { ThrottlerStorage } from '@nestjs/throttler';
import { DataSource } from 'typeorm';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** Milliseconds since the epoch. */
export type RateLimitClock = () => number;

/** Injection token of a clock for the rate limit (tests drive time with it); without one, the database's clock counts. */
export const RATE_LIMIT_CLOCK = Symbol('RATE_LIMIT_CLOCK');

/**
 * Rate-limit counts in PostgreSQL (table `rate_limit_hits`), so every process on the database counts
 * against one limit: a request is one upsert of its client's row for the current fixed window, answered
 * with the new count and the time left in the window (both from the database's clock, which every
 * process shares). Over the limit, a client is refused until its window ends. Windows that ended are
 * deleted at most once per window per process, off the request's path.
 */
export class PostgresThrottlerStorage implements ThrottlerStorage {
  private cleanedBefore = 0;

  /** `now`: the clock windows are counted by; the database's now() unless given. */
  constructor(
    private readonly dataSource: DataSource,
    private readonly now?: RateLimitClock,
  ) {}

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const [row]: { hits: number; window_ms: number; left_ms: number }[] = await this.dataSource.query(
      `WITH clock AS (SELECT COALESCE($3::float8, extract(epoch FROM now()) * 1000) AS now_ms)
       INSERT INTO rate_limit_hits AS h (tracker, window_start, hits)
       SELECT $1, to_timestamp(floor(now_ms / $2) * $2 / 1000), 1 FROM clock
       ON CONFLICT (tracker, window_start) DO UPDATE SET hits = h.hits + 1
       RETURNING h.hits, (extract(epoch FROM h.window_start) * 1000)::float8 AS window_ms,
                 (extract(epoch FROM h.window_start) * 1000 + $2 - (SELECT now_ms FROM clock))::float8 AS left_ms`,
      [key, ttl, this.now?.() ?? null],
    );
    if (row.window_ms > this.cleanedBefore) {
      this.cleanedBefore = row.window_ms;
      void this.dataSource
        .query(`DELETE FROM rate_limit_hits WHERE window_start < to_timestamp($1 / 1000.0)`, [row.window_ms])
        .catch(() => undefined);
    }
    const secondsLeft = Math.max(1, Math.ceil(row.left_ms / 1000));
    const isBlocked = row.hits > limit;
    return { totalHits: row.hits, timeToExpire: secondsLeft, isBlocked, timeToBlockExpire: isBlocked ? secondsLeft : 0 };
  }
}
