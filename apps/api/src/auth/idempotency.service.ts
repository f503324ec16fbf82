import { BadRequestException, ConflictException, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import type { Request } from 'express';
import { AuthenticatedRequest } from './authenticated-request';

export type IdempotencyDecision = { kind: 'proceed' } | { kind: 'replay'; status: number; body: unknown };
/** For a streamed body: proceed, or replay once the new body turns out to hash to `requestHash`. */
export type StreamedIdempotencyDecision = { kind: 'proceed' } | { kind: 'replay-if-same'; requestHash: string; status: number; body: unknown };

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key (undefined when absent); a 400 when malformed. */
export function readIdempotencyKey(request: Request): string | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !KEY.test(key)) throw new BadRequestException('header Idempotency-Key must be 1 to 255 printable ASCII characters');
  return key;
}

/** Keys are per caller: its API key id, or "public". */
export function idempotencyScope(request: AuthenticatedRequest): string {
  return request.principal?.keyId ?? 'public';
}

export function idempotencyRoute(request: Request): string {
  return `${request.method} ${request.path}`;
}

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_HOURS = 24;

/** The stored first answers to POSTs sent with an Idempotency-Key. */
@Injectable()
export class IdempotencyService {
  constructor(private readonly dataSource: DataSource) {}

  /** Claims the key for this request, or tells the first answer to replay; 409 on a mismatch or one in flight. */
  async begin(scope: string, key: string, route: string, requestHash: string): Promise<IdempotencyDecision> {
    await this.expire(scope, key);
    const inserted: unknown[] = await this.dataSource.query(
      `INSERT INTO idempotency_keys (scope, key, route, request_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING key`,
      [scope, key, route, requestHash],
    );
    if (inserted.length > 0) return { kind: 'proceed' };
    const [row]: { route: string; request_hash: string; status: number | null; response: unknown }[] = await this.dataSource.query(
      `SELECT route, request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
      [scope, key],
    );
    if (!row) return this.begin(scope, key, route, requestHash); // released meanwhile
    if (row.route !== route) throw new ConflictException(`Idempotency-Key was already used for ${row.route}`);
    if (row.request_hash !== requestHash) throw new ConflictException('Idempotency-Key was already used with a different body');
    if (row.status === null) throw new ConflictException('a request with this Idempotency-Key is still in progress');
    return { kind: 'replay', status: row.status, body: row.response };
  }

  /** As begin, for a body whose hash is known only once it was read (an NDJSON upload). */
  async beginStreamed(scope: string, key: string, route: string): Promise<StreamedIdempotencyDecision> {
    await this.expire(scope, key);
    const inserted: unknown[] = await this.dataSource.query(
      `INSERT INTO idempotency_keys (scope, key, route, streamed) VALUES ($1, $2, $3, true) ON CONFLICT DO NOTHING RETURNING key`,
      [scope, key, route],
    );
    if (inserted.length > 0) return { kind: 'proceed' };
    const [row]: { route: string; request_hash: string | null; streamed: boolean; status: number | null; response: unknown }[] = await this.dataSource.query(
      `SELECT route, request_hash, streamed, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2`,
      [scope, key],
    );
    if (!row) return this.beginStreamed(scope, key, route);
    if (row.route !== route) throw new ConflictException(`Idempotency-Key was already used for ${row.route}`);
    if (row.status === null) throw new ConflictException('a request with this Idempotency-Key is still in progress');
    if (!row.streamed) throw new ConflictException('Idempotency-Key was already used with a different body');
    return { kind: 'replay-if-same', requestHash: row.request_hash!, status: row.status, body: row.response };
  }

  async complete(scope: string, key: string, status: number, body: unknown, requestHash?: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE idempotency_keys SET status = $3, response = $4::jsonb, request_hash = coalesce($5, request_hash) WHERE scope = $1 AND key = $2`,
      [scope, key, status, JSON.stringify(body ?? null), requestHash ?? null],
    );
  }

  private async expire(scope: string, key: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < now() - make_interval(hours => $3)`, [
      scope,
      key,
      IDEMPOTENCY_TTL_HOURS,
    ]);
  }

  /** The request failed: the key is free again (a retry runs anew). */
  async release(scope: string, key: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL`, [scope, key]);
  }
}
