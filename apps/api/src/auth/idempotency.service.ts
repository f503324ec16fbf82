import { BadRequestException, ConflictException, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Request } from 'express';
import { KeyStore, lookupHash, openPayload, payloadAssociatedData, sealPayload } from '@lethe/keystore';
import { AppConfig } from '../config/config';
import { APP_CONFIG, KEY_STORE } from '../config/config.provider';
import { AuthenticatedRequest } from './authenticated-request';

export type IdempotencyDecision = { kind: 'proceed'; claim: IdempotencyClaim } | { kind: 'replay'; status: number; body: unknown };
/** For a streamed body: proceed, or replay once the new body turns out to have the digest of the first. */
export type StreamedIdempotencyDecision =
  | { kind: 'proceed'; claim: IdempotencyClaim }
  | { kind: 'replay-if-same'; claim: IdempotencyClaim; requestMac: string; status: number; body: unknown };

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

/**
 * Marks a route whose answer holds a secret (`field`, e.g. a new API key): its answer is never stored, only
 * what is left without the field, and a retry with the same Idempotency-Key is a 409 naming what was made.
 */
export const SECRET_IN_RESPONSE = 'lethe:secret-in-response';
export const SecretInResponse = (field: string) => SetMetadata(SECRET_IN_RESPONSE, field);

/**
 * A request's hold on an Idempotency-Key. The key itself is never stored: rows are found by a keyed hash of
 * it, and the stored answer is sealed (AES-256-GCM) under a key derived from it and the server's lookup key,
 * so only a retry that presents the same Idempotency-Key can read it; the body is compared by a MAC under
 * that key (an unkeyed hash of a small body, e.g. a forget request naming a subject, could be guessed).
 */
export class IdempotencyClaim {
  constructor(
    readonly scope: string,
    readonly keyHash: string,
    readonly route: string,
    private readonly sealKey: Buffer,
  ) {}

  /** The MAC of a body's SHA-256 digest (hex) under the claim's key. */
  macOf(digest: string): string {
    return lookupHash(this.sealKey, 'idempotency request', digest);
  }

  seal(body: unknown): Buffer {
    return sealPayload(this.sealKey, Buffer.from(JSON.stringify(body ?? null), 'utf8'), this.associatedData());
  }

  open(sealed: Buffer): unknown {
    return JSON.parse(openPayload(this.sealKey, sealed, this.associatedData()).toString('utf8'));
  }

  private associatedData(): Buffer {
    return payloadAssociatedData('idempotency', this.scope, this.keyHash, this.route);
  }
}

interface IdempotencyRow {
  route: string;
  request_mac: string | null;
  streamed: boolean;
  status: number | null;
  replayable: boolean;
  response: Buffer | null;
}

/**
 * The first answers to POSTs sent with an Idempotency-Key, for IDEMPOTENCY_TTL_HOURS (rows older than that
 * are ignored, and deleted by `deleteExpired`). Nothing in a row is a secret or an identifier in clear.
 */
@Injectable()
export class IdempotencyService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(KEY_STORE) private readonly keyStore: KeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The claim of `key` for this caller and route: its row's id and sealing key. */
  async claimFor(scope: string, key: string, route: string): Promise<IdempotencyClaim> {
    const lookupKey = await this.keyStore.getLookupKey();
    const keyHash = lookupHash(lookupKey, ['idempotencyKey', scope], key);
    const sealKey = Buffer.from(lookupHash(lookupKey, ['idempotencySeal', scope], key), 'hex');
    return new IdempotencyClaim(scope, keyHash, route, sealKey);
  }

  /**
   * Claims the key for this request (body digest `requestDigest`), or tells the first answer to replay; 409 on
   * another body or route, one in flight, or a first answer that held a secret.
   */
  async begin(claim: IdempotencyClaim, requestDigest: string): Promise<IdempotencyDecision> {
    const mac = claim.macOf(requestDigest);
    for (;;) {
      await this.expire(claim);
      const inserted: unknown[] = await this.dataSource.query(
        `INSERT INTO idempotency_keys (scope, key_hash, route, request_mac) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING key_hash`,
        [claim.scope, claim.keyHash, claim.route, mac],
      );
      if (inserted.length > 0) return { kind: 'proceed', claim };
      const row = await this.find(claim);
      if (!row) continue; // released meanwhile
      this.checkSameRoute(row, claim);
      if (row.request_mac !== mac) throw new ConflictException('Idempotency-Key was already used with a different body');
      return { kind: 'replay', ...this.answerOf(row, claim) };
    }
  }

  /** As begin, for a body whose digest is known only once it was read (an NDJSON upload). */
  async beginStreamed(claim: IdempotencyClaim): Promise<StreamedIdempotencyDecision> {
    for (;;) {
      await this.expire(claim);
      const inserted: unknown[] = await this.dataSource.query(
        `INSERT INTO idempotency_keys (scope, key_hash, route, streamed) VALUES ($1, $2, $3, true) ON CONFLICT DO NOTHING RETURNING key_hash`,
        [claim.scope, claim.keyHash, claim.route],
      );
      if (inserted.length > 0) return { kind: 'proceed', claim };
      const row = await this.find(claim);
      if (!row) continue;
      this.checkSameRoute(row, claim);
      if (row.status === null) throw new ConflictException('a request with this Idempotency-Key is still in progress');
      if (!row.streamed) throw new ConflictException('Idempotency-Key was already used with a different body');
      return { kind: 'replay-if-same', claim, requestMac: row.request_mac!, ...this.answerOf(row, claim) };
    }
  }

  /**
   * Stores the first answer, sealed. With `secretField`, the answer held a secret: only the rest is kept,
   * and a retry gets a 409 instead of the secret again.
   */
  async complete(claim: IdempotencyClaim, status: number, body: unknown, options: { requestDigest?: string; secretField?: string } = {}): Promise<void> {
    const kept = options.secretField === undefined ? body : withoutField(body, options.secretField);
    await this.dataSource.query(
      `UPDATE idempotency_keys SET status = $3, response = $4, replayable = $5, request_mac = coalesce($6, request_mac)
        WHERE scope = $1 AND key_hash = $2`,
      [
        claim.scope,
        claim.keyHash,
        status,
        claim.seal(kept),
        options.secretField === undefined,
        options.requestDigest === undefined ? null : claim.macOf(options.requestDigest),
      ],
    );
  }

  /** The request failed: the key is free again (a retry runs anew). */
  async release(claim: IdempotencyClaim): Promise<void> {
    await this.dataSource.query(`DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND status IS NULL`, [claim.scope, claim.keyHash]);
  }

  /** Deletes every row older than IDEMPOTENCY_TTL_HOURS (the sweep); returns how many. */
  async deleteExpired(): Promise<number> {
    const [, deleted]: [unknown, number] = await this.dataSource.query(
      `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)`,
      [this.config.idempotencyTtlHours],
    );
    return deleted;
  }

  private async find(claim: IdempotencyClaim): Promise<IdempotencyRow | undefined> {
    const [row]: IdempotencyRow[] = await this.dataSource.query(
      `SELECT route, request_mac, streamed, status, replayable, response FROM idempotency_keys WHERE scope = $1 AND key_hash = $2`,
      [claim.scope, claim.keyHash],
    );
    return row;
  }

  private checkSameRoute(row: IdempotencyRow, claim: IdempotencyClaim): void {
    if (row.route !== claim.route) throw new ConflictException(`Idempotency-Key was already used for ${row.route}`);
  }

  /** The stored answer; 409 while the first request runs, or when its answer held a secret. */
  private answerOf(row: IdempotencyRow, claim: IdempotencyClaim): { status: number; body: unknown } {
    if (row.status === null || row.response === null) throw new ConflictException('a request with this Idempotency-Key is still in progress');
    const body = claim.open(row.response);
    if (!row.replayable) {
      throw new ConflictException(
        `Idempotency-Key was already used for this request, whose answer held a secret that is shown only once; it made ${JSON.stringify(body)}`,
      );
    }
    return { status: row.status, body };
  }

  private async expire(claim: IdempotencyClaim): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM idempotency_keys WHERE scope = $1 AND key_hash = $2 AND created_at < now() - make_interval(hours => $3)`,
      [claim.scope, claim.keyHash, this.config.idempotencyTtlHours],
    );
  }
}

function withoutField(body: unknown, field: string): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const { [field]: _, ...rest } = body as Record<string, unknown>;
  return rest;
}
