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
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { PostgresThrottlerStorage, RATE_LIMIT_CLOCK, type RateLimitClock } from './rate-limit.storage';

/** One minute: RATE_LIMIT_PER_MINUTE counts requests per window of this length. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

const THROTTLER_NAME = 'default';

/** The throttler's settings for RATE_LIMIT_PER_MINUTE requests per minute (limit > 0; 0 means no guard). */
export function rateLimitOptions(perMinute: number): ThrottlerModuleOptions {
  return {
    throttlers: [{ name: THROTTLER_NAME, ttl: RATE_LIMIT_WINDOW_MS, limit: perMinute }],
    errorMessage: (_context: ExecutionContext, detail: ThrottlerLimitDetail) =>
      `rate limit of ${detail.limit} requests per minute reached; retry in ${detail.timeToBlockExpire} s`,
  };
}

/** Who a request is, as far as the rate limit needs to know (keys/ provides it: ApiKeyAuthenticator). */
export interface RateLimitIdentity {
  /** The id of the request's key when the key is valid (looked up at most once per request), else undefined. */
  validKeyIdOf(request: Request): Promise<string | undefined>;
  /** Whether the request's key may be valid, told without looking that key up. */
  mayBeValid(request: Request): Promise<boolean>;
}

/** Injection token of the RateLimitIdentity. */
export const RATE_LIMIT_IDENTITY = Symbol('RATE_LIMIT_IDENTITY');

/**
 * Counts requests per valid API key (under the key's id, never the key), and every other request (no key,
 * a malformed header, an unknown or revoked key) per client address (`req.ip`: the forwarded address
 * behind a trusted proxy, TRUST_PROXY), over all routes together, in PostgreSQL (PostgresThrottlerStorage):
 * every process on the database counts against the same limit. So made-up keys do not each get an
 * allowance of their own: they spend their address's. A key is looked up once per request (the
 * RateLimitIdentity, shared with ApiKeyGuard), a key found bad is remembered and not looked up again, and
 * while an address is over its limit its requests are refused without any lookup or write, except for
 * real keys (RateLimitIdentity.mayBeValid), which keep their own allowance.
 * /v1/health is never limited (`@SkipThrottle()` on its controller): monitoring must see the service even
 * when a client is throttled.
 * Over the limit: 429 `{statusCode, error: 'Too Many Requests', message}` with `Retry-After` (seconds).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  private readonly counts: PostgresThrottlerStorage;

  // The parameters keep ThrottlerGuard's order (its injection tokens are inherited by position); the
  // module's in-memory storage is not used. A RATE_LIMIT_CLOCK provider, when there is one, replaces the
  // database's clock (tests drive time with it).
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() _inMemory: ThrottlerStorage,
    reflector: Reflector,
    @Inject(DataSource) dataSource: DataSource,
    @Inject(RATE_LIMIT_IDENTITY) private readonly identity: RateLimitIdentity,
    @Optional() @Inject(RATE_LIMIT_CLOCK) now?: RateLimitClock,
  ) {
    const counts = new PostgresThrottlerStorage(dataSource, now);
    super(options, counts, reflector);
    this.counts = counts;
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    return context.getType() !== 'http';
  }

  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const req = request as unknown as Request;
    const address = `ip:${await super.getTracker(request)}`;
    if (req.headers.authorization === undefined) return address;
    // Over the limit, an address's made-up keys are not even looked up.
    if (this.counts.isBlocked(bucketOf(address, THROTTLER_NAME)) && !(await this.identity.mayBeValid(req))) return address;
    const keyId = await this.identity.validKeyIdOf(req);
    return keyId !== undefined ? `key:${keyId}` : address;
  }

  /** One bucket per client across every route (the default is one per client and route). */
  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return bucketOf(tracker, throttlerName);
  }
}

function bucketOf(tracker: string, throttlerName: string): string {
  return `${throttlerName}:${tracker}`;
}
