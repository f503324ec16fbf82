import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '@lethe/postgres';

/**
 * The PostgreSQL server a benchmark uses: DATABASE_URL's when set, else a throwaway embedded one (its
 * folder open for searching, since as root PostgreSQL runs as its own user). `stop` ends what was started; `pid`, the
 * postmaster's (embedded only), lets a bench read the server's CPU.
 */
export async function startBenchPostgres(): Promise<{ serverUrl: string; pid?: number; stop(): Promise<void> }> {
  const given = process.env.DATABASE_URL;
  if (given) return { serverUrl: given, stop: async () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'lethe-bench-pg-'));
  chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), persistent: false });
  return {
    serverUrl: pg.url,
    pid: pg.pid,
    stop: async () => {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
