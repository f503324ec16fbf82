import { Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { parseIntegerParam } from '../common/query-params';
import { Principal, Role } from '../auth/role';
import { generateApiKey, hashApiKey, sameKeyHash } from './api-key.crypto';
import { ApiKeyEntity } from './api-key.entity';
import { ApiKeyResponseDto, CreatedApiKeyResponseDto, toApiKeyResponse } from './api-key.dto';

/** Advisory lock key taken while deciding whether the first admin key must be made ("apikey"). */
const ADMIN_KEY_LOCK = 0x6170696b6579;

/**
 * Creates, revokes and checks API keys. Used by the HTTP routes, by the guard on every request, and by
 * the CLI and main.ts (plain constructor: `new ApiKeyService(dataSource)`).
 */
@Injectable()
export class ApiKeyService {
  constructor(private readonly dataSource: DataSource) {}

  async create(role: Role, name?: string): Promise<CreatedApiKeyResponseDto> {
    const key = generateApiKey();
    const id = randomUUID();
    const keyName = name ?? `${role} key`;
    // Plain SQL: the CLI calls this on a data source that knows only the ledger's entities.
    await this.dataSource.query(`INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, $2, $3, $4)`, [id, keyName, role, hashApiKey(key)]);
    return { id, key, role, name: keyName };
  }

  /** Revokes a key; it fails from the next request on. Revoking a revoked key is a no-op. */
  async revoke(id: string): Promise<void> {
    const result = await this.dataSource.query(`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING id`, [id]);
    if ((result[0] as unknown[]).length === 0) throw new NotFoundException(`no API key with id ${id}`);
  }

  async list(query: { start?: unknown; limit?: unknown }): Promise<ApiKeyResponseDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: 1000 });
    const keys = await this.dataSource.getRepository(ApiKeyEntity).find({ order: { createdAt: 'ASC', id: 'ASC' }, skip: start, take: limit });
    return keys.map(toApiKeyResponse);
  }

  /** The principal of a key, or undefined when it is unknown or revoked. */
  async authenticate(key: string): Promise<Principal | undefined> {
    const hash = hashApiKey(key);
    const rows: { id: string; name: string; role: Role; key_hash: Buffer }[] = await this.dataSource.query(
      `SELECT id, name, role, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
      [hash],
    );
    const row = rows[0];
    if (!row || !sameKeyHash(row.key_hash, hash)) return undefined;
    return { keyId: row.id, role: row.role, name: row.name };
  }

  /** The SHA-256 hashes (hex) of every key not revoked: for the rate limit's view of who may be valid. */
  async validKeyHashes(): Promise<Set<string>> {
    const rows: { key_hash: Buffer }[] = await this.dataSource.query(`SELECT key_hash FROM api_keys WHERE revoked_at IS NULL`);
    return new Set(rows.map((r) => r.key_hash.toString('hex')));
  }

  /**
   * At start-up: makes sure an admin can get in. With `configuredKey` (LETHE_ADMIN_KEY) that key is an
   * admin key (added if new). Without it, and only when no admin key was ever made, a new one is
   * generated and returned (the caller prints it once; it is not stored anywhere but as its hash).
   */
  async ensureAdminKey(configuredKey: string | undefined): Promise<{ generatedKey?: string; id: string } | undefined> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_KEY_LOCK]);
      if (configuredKey !== undefined) {
        const hash = hashApiKey(configuredKey);
        const existing: { id: string; role: string; revoked: boolean }[] = await manager.query(
          `SELECT id, role, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1`,
          [hash],
        );
        if (existing[0]) {
          if (existing[0].role !== 'admin' || existing[0].revoked)
            throw new Error('LETHE_ADMIN_KEY: this key is stored as a non-admin or revoked key; choose another');
          return { id: existing[0].id };
        }
        const id = randomUUID();
        await manager.query(`INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, 'LETHE_ADMIN_KEY', 'admin', $2)`, [id, hash]);
        return { id };
      }
      const [{ admins }] = await manager.query(`SELECT count(*)::int AS admins FROM api_keys WHERE role = 'admin'`);
      if (admins > 0) return undefined;
      const key = generateApiKey();
      const id = randomUUID();
      await manager.query(`INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, 'first admin key', 'admin', $2)`, [id, hashApiKey(key)]);
      return { id, generatedKey: key };
    });
  }
}

/** LETHE_ADMIN_KEY must be long enough to be unguessable; the message never shows the value. */
export function readAdminKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.LETHE_ADMIN_KEY;
  if (raw === undefined || raw.trim() === '') return undefined;
  const key = raw.trim();
  if (key.length < 32 || key.length > 512 || !/^[\x21-\x7e]+$/.test(key))
    throw new AdminKeyConfigError('LETHE_ADMIN_KEY: must be 32 to 512 printable ASCII characters without spaces (the value is not shown)');
  return key;
}

export class AdminKeyConfigError extends Error {
  override name = 'AdminKeyConfigError';
}
