import { Pool, PoolClient } from 'pg';
import { describePostgresUrl } from '@lethe/postgres';
import { ArtifactRef, ArtifactStore, checkRef, checkSha256, sha256Hex } from './artifact-store';
import { ArtifactError } from './errors';

export interface PostgresArtifactStoreOptions {
  /** postgres://…: the service's DATABASE_URL, or a database of their own. */
  url: string;
  /** Bytes per row of artifact_chunks (default 1 MiB): what one statement sends or receives. */
  chunkBytes?: number;
  /**
   * What `reclaim` runs after deletions: `plain` (default) VACUUM, which frees the deleted rows' space for
   * reuse and truncates empty pages at the table's end; `full` (VACUUM FULL) rewrites the table into new
   * files and unlinks the old ones, so no deleted byte stays in the table's files, at the price of locking
   * the table (every read and write of an artifact waits) while it copies every live artifact.
   */
  vacuum?: 'plain' | 'full';
  /** Connections (default 4). */
  poolSize?: number;
  /** How long a connection attempt may take before the store is UNAVAILABLE (default 10 s). */
  connectTimeoutMs?: number;
}

/** SQLSTATE classes and error codes that mean "the server is not there", not "the statement is wrong". */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', '57P01', '57P02', '57P03', '53300', '28P01', '28000', '3D000']);

/** Rows read per statement by `get` (chunks of chunkBytes each). */
const READ_PAGE = 8;

/**
 * Artifacts in PostgreSQL (the default when DATABASE_URL is set): a worker on another machine needs nothing
 * but the database URL. Two tables, made here at first use (like pg-boss's, so that a database of their own
 * needs no migration run): `artifacts` (kind, address, SHA-256, size, chunk count) and `artifact_chunks`
 * (the bytes, `chunkBytes` a row, stored out of line and uncompressed: weights do not compress).
 * - put: the header and every chunk in one statement (one transaction), so no reader ever sees part of an
 *   artifact, and a crash leaves nothing.
 * - get: the header and chunks a page at a time in one REPEATABLE READ snapshot, checked against the
 *   recorded size and SHA-256 (CORRUPT otherwise).
 * - delete: one DELETE, committed (durable) before it resolves; `reclaim` VACUUMs afterwards.
 * What a delete leaves, and where (README, "What forgetting erases"): the rows are gone for every query at
 * once; their bytes stay in the table's (TOAST) pages as dead tuples until VACUUM, and in free space within
 * those pages until PostgreSQL reuses it (VACUUM FULL, `vacuum: 'full'`, rewrites the table instead); in the
 * WAL until its segments are recycled (after checkpoints, or longer if archiving, replication slots or
 * wal_keep_size hold them); in backups and WAL archives for as long as those are kept.
 */
export class PostgresArtifactStore implements ArtifactStore {
  readonly description: string;
  private readonly pool: Pool;
  private readonly chunkBytes: number;
  private readonly vacuum: 'plain' | 'full';
  private schema: Promise<void> | undefined;

  constructor(options: PostgresArtifactStoreOptions) {
    this.description = describeUrl(options.url);
    this.chunkBytes = options.chunkBytes ?? 1 << 20;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1) {
      throw new ArtifactError('INVALID_ARGUMENT', `chunkBytes must be a positive integer, got ${options.chunkBytes}`, { field: 'chunkBytes' });
    }
    this.vacuum = options.vacuum ?? 'plain';
    this.pool = new Pool({ connectionString: options.url, max: options.poolSize ?? 4, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000 });
    // An idle connection that the server drops must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async put(ref: ArtifactRef, bytes: Uint8Array): Promise<void> {
    checkRef(ref);
    const sha256 = sha256Hex(bytes);
    if (ref.kind === 'onnx') checkSha256(ref, bytes, ref.address, this.description);
    const chunks = Math.max(1, Math.ceil(bytes.length / this.chunkBytes));
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const data = Array.from({ length: chunks }, (_, seq) => view.subarray(seq * this.chunkBytes, (seq + 1) * this.chunkBytes));
    // One statement, so one transaction and one round trip (a put sits on the way to publishing a version): the
    // header, every chunk, and no chunk beyond them. The header row's lock (the upsert takes it) orders concurrent
    // puts of one address. The same bytes are written again, not skipped: a put is how a damaged copy gets
    // repaired (its chunks overwritten, any extra one deleted).
    await this.withClient((client) =>
      client.query(
        `WITH header AS (
           INSERT INTO artifacts (kind, address, sha256, size, chunks) VALUES ($1::text, $2::text, $3, $4, $5::integer)
           ON CONFLICT (kind, address) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, chunks = EXCLUDED.chunks, created_at = now()
         ), extra AS (
           DELETE FROM artifact_chunks WHERE kind = $1 AND address = $2 AND seq >= $5
         )
         INSERT INTO artifact_chunks (kind, address, seq, data)
         SELECT $1, $2, c.seq, c.data FROM (VALUES ${data.map((_, seq) => `(${seq}, $${6 + seq}::bytea)`).join(', ')}) AS c(seq, data)
         ON CONFLICT (kind, address, seq) DO UPDATE SET data = EXCLUDED.data`,
        // Each chunk a parameter of its own: sent as binary (a bytea[] would go as hex text, twice the bytes).
        [ref.kind, ref.address, sha256, bytes.length, chunks, ...data],
      ),
    );
  }

  async get(ref: ArtifactRef): Promise<Uint8Array | undefined> {
    checkRef(ref);
    const found = await this.transaction('REPEATABLE READ', async (client) => {
      const { rows } = await client.query<{ sha256: string; size: string; chunks: number }>(
        `SELECT sha256, size, chunks FROM artifacts WHERE kind = $1 AND address = $2`,
        [ref.kind, ref.address],
      );
      if (rows.length === 0) return undefined;
      const size = Number(rows[0].size);
      const out = new Uint8Array(size);
      let offset = 0;
      for (let seq = 0; seq < rows[0].chunks; seq += READ_PAGE) {
        const page = await client.query<{ seq: number; data: Buffer }>(
          `SELECT seq, data FROM artifact_chunks WHERE kind = $1 AND address = $2 AND seq >= $3 AND seq < $4 ORDER BY seq`,
          [ref.kind, ref.address, seq, seq + READ_PAGE],
        );
        for (const chunk of page.rows) {
          if (offset + chunk.data.length > size) return { bytes: out, complete: false, sha256: rows[0].sha256 };
          out.set(chunk.data, offset);
          offset += chunk.data.length;
        }
      }
      return { bytes: out, complete: offset === size, sha256: rows[0].sha256 };
    });
    if (found === undefined) return undefined;
    if (!found.complete) {
      throw new ArtifactError('CORRUPT', `${ref.kind} ${ref.address} in ${this.description}: its chunks do not add up to its recorded size`, {
        kind: ref.kind,
        address: ref.address,
        store: this.description,
      });
    }
    checkSha256(ref, found.bytes, found.sha256, this.description);
    if (ref.kind === 'onnx') checkSha256(ref, found.bytes, ref.address, this.description);
    return found.bytes;
  }

  async has(ref: ArtifactRef): Promise<boolean> {
    checkRef(ref);
    const rows = await this.query<{ one: number }>(`SELECT 1 AS one FROM artifacts WHERE kind = $1 AND address = $2`, [ref.kind, ref.address]);
    return rows.length > 0;
  }

  async delete(ref: ArtifactRef): Promise<boolean> {
    checkRef(ref);
    // The chunks go with their header (ON DELETE CASCADE), in the same statement's transaction.
    const rows = await this.query<{ address: string }>(`DELETE FROM artifacts WHERE kind = $1 AND address = $2 RETURNING address`, [ref.kind, ref.address]);
    return rows.length > 0;
  }

  async reclaim(): Promise<void> {
    await this.query(this.vacuum === 'full' ? `VACUUM FULL artifact_chunks` : `VACUUM artifact_chunks`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** One statement outside any transaction (VACUUM refuses to run in one). */
  private async query<T extends object>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.withClient(async (client) => (await client.query<T>(sql, params)).rows);
  }

  private async transaction<T>(isolation: 'READ COMMITTED' | 'REPEATABLE READ', fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  private async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.unavailable(error);
    }
    let broken = false;
    try {
      await (this.schema ??= createSchema(client).catch((error: unknown) => {
        this.schema = undefined;
        throw error;
      }));
      return await fn(client);
    } catch (error) {
      if (isUnreachable(error)) {
        broken = true;
        throw this.unavailable(error);
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  private unavailable(error: unknown): ArtifactError {
    if (error instanceof ArtifactError) return error;
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    return new ArtifactError('UNAVAILABLE', `the artifact store ${this.description} cannot be reached: ${reason}`, { store: this.description });
  }
}

function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  if (code !== undefined && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test((error as Error)?.message ?? '');
}

/** The tables, made once per database (an advisory lock orders processes that start together). */
async function createSchema(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('lethe artifacts schema'))`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS artifacts (
        kind text NOT NULL CHECK (kind IN ('checkpoint', 'onnx')),
        address text NOT NULL CHECK (address ~ '^[0-9a-f]{64}$'),
        sha256 text NOT NULL,
        size bigint NOT NULL CHECK (size >= 0),
        chunks integer NOT NULL CHECK (chunks >= 1),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, address)
      )`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS artifact_chunks (
        kind text NOT NULL,
        address text NOT NULL,
        seq integer NOT NULL CHECK (seq >= 0),
        data bytea NOT NULL,
        PRIMARY KEY (kind, address, seq),
        FOREIGN KEY (kind, address) REFERENCES artifacts (kind, address) ON DELETE CASCADE
      )`);
    // Out of line (TOAST) and never compressed: compressing weights costs CPU and saves nothing.
    await client.query(`ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The store's description: `PostgreSQL host:port/database` (no credentials). */
export const describeUrl = describePostgresUrl;
