import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { LRUCache } from 'lru-cache';
import { Principal } from '../auth/role';
import { RateLimitIdentity } from '../common/rate-limit.guard';
import { hashApiKey } from './api-key.crypto';
import { ApiKeyService } from './api-key.service';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/** What a request's `Authorization` header turned out to be. */
export type KeyCheck =
  | { kind: 'none' }
  | { kind: 'malformed' }
  /** Unknown or revoked (possibly remembered as such: no lookup). */
  | { kind: 'unknown' }
  | { kind: 'valid'; principal: Principal };

/** Hashes of keys found unknown or revoked, remembered this long (a key made later cannot have been guessed before). */
export const BAD_KEY_MEMORY_MS = 10 * 60_000;
/** At most this many of them (64 hex characters each: about 2 MB). */
export const BAD_KEY_MEMORY_SIZE = 10_000;
/** How old the snapshot of the valid keys' hashes (mayBeValid) may be; a key made meanwhile waits this long at most. */
export const VALID_KEYS_REFRESH_MS = 10_000;

/**
 * Works out who a request is, once per request (the rate limit and ApiKeyGuard share the answer): no key, a
 * malformed header, an unknown or revoked key, or a valid key and its principal. A valid key is looked up on
 * every request (a revoked key fails at once); a key found bad is remembered for BAD_KEY_MEMORY_MS, so
 * sending it again costs no `api_keys` lookup. Nothing is stored but key hashes, in memory.
 */
@Injectable()
export class ApiKeyAuthenticator implements RateLimitIdentity {
  private readonly badKeys = new LRUCache<string, true>({ max: BAD_KEY_MEMORY_SIZE, ttl: BAD_KEY_MEMORY_MS });
  private readonly checks = new WeakMap<Request, Promise<KeyCheck>>();
  private validKeys: { hashes: Set<string>; readAt: number } | undefined;
  private readingValidKeys: Promise<Set<string>> | undefined;

  constructor(private readonly apiKeyService: ApiKeyService) {}

  check(request: Request): Promise<KeyCheck> {
    let check = this.checks.get(request);
    if (check === undefined) {
      check = this.checkHeader(request.headers.authorization);
      this.checks.set(request, check);
    }
    return check;
  }

  async validKeyIdOf(request: Request): Promise<string | undefined> {
    const check = await this.check(request);
    return check.kind === 'valid' ? check.principal.keyId : undefined;
  }

  /**
   * Whether the request's key may be valid, without looking it up: it is among the hashes of the keys that
   * were valid at most VALID_KEYS_REFRESH_MS ago (one read of them all per that time, whatever the number
   * of requests). The rate limit asks this while an address is over its limit, so that made-up keys cost
   * nothing then while real keys keep their own allowance; check() still decides.
   */
  async mayBeValid(request: Request): Promise<boolean> {
    const key = bearerKey(request.headers.authorization);
    if (key === undefined) return false;
    const hash = hashApiKey(key).toString('hex');
    return !this.badKeys.has(hash) && (await this.validKeyHashes()).has(hash);
  }

  private async checkHeader(header: string | undefined): Promise<KeyCheck> {
    if (header === undefined) return { kind: 'none' };
    const key = bearerKey(header);
    if (key === undefined) return { kind: 'malformed' };
    const hash = hashApiKey(key).toString('hex');
    if (this.badKeys.has(hash)) return { kind: 'unknown' };
    const principal = await this.apiKeyService.authenticate(key);
    if (!principal) {
      this.badKeys.set(hash, true);
      return { kind: 'unknown' };
    }
    return { kind: 'valid', principal };
  }

  private validKeyHashes(): Promise<Set<string>> {
    if (this.validKeys !== undefined && Date.now() - this.validKeys.readAt < VALID_KEYS_REFRESH_MS) return Promise.resolve(this.validKeys.hashes);
    this.readingValidKeys ??= this.apiKeyService
      .validKeyHashes()
      .then((hashes) => {
        this.validKeys = { hashes, readAt: Date.now() };
        return hashes;
      })
      .finally(() => (this.readingValidKeys = undefined));
    return this.readingValidKeys;
  }
}

function bearerKey(header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}
