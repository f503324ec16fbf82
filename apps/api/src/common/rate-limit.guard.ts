import { ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  ThrottlerModuleOptions,
  ThrottlerStorage,
} from '@nestjs/throttler';
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { PostgresThrottlerStorage, RATE_LIMIT_CLOCK, type RateLimitClock } from './rate-limit.storage';

/** One minute: RATE_LIMIT_PER_MINUTE counts requests per window of this length. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/** The throttler's settings for RATE_LIMIT_PER_MINUTE requests per minute (limit > 0; 0 means no guard). */
export function rateLimitOptions(perMinute: number): ThrottlerModuleOptions {
  return {
    throttlers: [{ name: 'default', ttl: RATE_LIMIT_WINDOW_MS, limit: perMinute }],
    errorMessage: (_context: ExecutionContext, detail: ThrottlerLimitDetail) =>
      `rate limit of ${detail.limit} requests per minute reached; retry in ${detail.timeToBlockExpire} s`,
  };
}

/**
 * Counts requests per API key (a request with `Authorization` is counted under a hash of the header,
 * never the key itself), or per client address for public requests, over all routes together, in
 * PostgreSQL (PostgresThrottlerStorage): every process on the database counts against the same limit.
 * Runs before the key is checked, so a flood of wrong keys is limited without a database lookup.
 * /v1/health is never limited (`@SkipThrottle()` on its controller): monitoring must see the service even
 * when a client is throttled.
 * Over the limit: 429 `{statusCode, error: 'Too Many Requests', message}` with `Retry-After` (seconds).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  // The parameters keep ThrottlerGuard's order (its injection tokens are inherited by position); the
  // module's in-memory storage is not used. A RATE_LIMIT_CLOCK provider, when there is one, replaces the
  // database's clock (tests drive time with it).
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() _inMemory: ThrottlerStorage,
    reflector: Reflector,
    @Inject(DataSource) dataSource: DataSource,
    @Optional() @Inject(RATE_LIMIT_CLOCK) now?: RateLimitClock,
  ) {
    super(options, new PostgresThrottlerStorage(dataSource, now), reflector);
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return context.getType() !== 'http';
  }

  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const req = request as unknown as Request;
    const authorization = req.headers.authorization;
    if (authorization !== undefined) return `key:${createHash('sha256').update(authorization).digest('hex')}`;
    return `ip:${await super.getTracker(request)}`;
  }

  /** One bucket per client across every route (the default is one per client and route). */
  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return `${throttlerName}:${tracker}`;
  }
}
