import { ThrottlerStorage } from '@nestjs/throttler';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** Milliseconds since the epoch. */
export type RateLimitClock = () => number;

/** Injection token of a clock for the rate limit (tests drive time with it); without one, the database's clock counts. */
export const RATE_LIMIT_CLOCK = Symbol('RATE_LIMIT_CLOCK');

/** Clients remembered as over the limit, at most (an address or a key id each: a few MB). */
export const BLOCKED_MEMORY_SIZE = 50_000;

/**
 * Rate-limit counts in PostgreSQL (table `rate_limit_hits`), so every process on the database counts
 * against one limit: a request is one upsert of its client's row for the current fixed window, answered
 * with the new count and the time left in the window (both from the database's clock, which every
 * process shares). Over the limit, a client is refused until its window ends: once a process has seen that,
 * it refuses the client's further requests in that window from memory, without writing (at most
 * BLOCKED_MEMORY_SIZE clients at once; the oldest are forgotten first, which only costs them a write).
 * Windows that ended are deleted at most once per window per process, off the request's path.
 */
export class PostgresThrottlerStorage implements ThrottlerStorage {
  private cleanedBefore = 0;
  /** Clients seen over the limit, each with when its window ends (this process's clock, or `now`'s). */
  private readonly blocked = new LRUCache<string, number>({ max: BLOCKED_MEMORY_SIZE });

  /** `now`: the clock windows are counted by; the database's now() unless given. */
  constructor(
    private readonly dataSource: DataSource,
    private readonly now?: RateLimitClock,
  ) {}

  /** Whether `key` is over the limit in its current window, as far as this process has seen. */
  isBlocked(key: string): boolean {
    return this.blockedUntil(key) !== undefined;
  }

  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const until = this.blockedUntil(key);
    if (until !== undefined) {
      const secondsLeft = Math.max(1, Math.ceil((until - this.localNow()) / 1000));
      return { totalHits: limit + 1, timeToExpire: secondsLeft, isBlocked: true, timeToBlockExpire: secondsLeft };
    }
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
    if (isBlocked && row.left_ms > 0) this.blocked.set(key, this.localNow() + row.left_ms);
    return { totalHits: row.hits, timeToExpire: secondsLeft, isBlocked, timeToBlockExpire: isBlocked ? secondsLeft : 0 };
  }

  /** When `key`'s window ends if it is remembered as over the limit in it; undefined otherwise (a window that ended is forgotten). */
  private blockedUntil(key: string): number | undefined {
    const until = this.blocked.get(key);
    if (until === undefined) return undefined;
    if (until > this.localNow()) return until;
    this.blocked.delete(key);
    return undefined;
  }

  /** The time the remembered windows end by: the injected clock, or this process's (the time left in a window is a duration, whichever clock counted it). */
  private localNow(): number {
    return this.now?.() ?? Date.now();
  }
}
