import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../libs/postgres/src';

/**
 * Starts one throwaway PostgreSQL for the whole run unless TEST_DATABASE_URL points at a server.
 * Each test file creates its own database on it (test/support/database.ts), so no test depends on another.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  const dir = mkdtempSync(join(tmpdir(), 'lethe-test-pg-'));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as its own user, which must reach the cluster's folder
  const db = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), persistent: false });
  process.env.TEST_DATABASE_URL = db.url;
  (globalThis as { __LETHE_TEST_PG__?: { stop(): Promise<void> } }).__LETHE_TEST_PG__ = db;
}
