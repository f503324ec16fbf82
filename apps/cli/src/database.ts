import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { openDatabase } from '@lethe/ledger';
import { startEmbeddedPostgres } from '@lethe/postgres';
import { EMBEDDED_DATABASE_NAME, embeddedInfoPath, ensureDatabase } from '../../api/src/database/database';
import { API_ENTITIES, API_MIGRATIONS } from '../../api/src/database/schema';
import { openServiceKeyStore } from '../../api/src/config/key-store';

/**
 * The service's database, as the CLI finds it: --database-url / DATABASE_URL; else the embedded
 * PostgreSQL of a running service (DATA_DIR/embedded-postgres.json); else the embedded cluster in
 * DATA_DIR started just for this command.
 */
export async function connectToServiceDatabase(options: { databaseUrl?: string; dataDir: string }): Promise<{
  dataSource: DataSource;
  close(): Promise<void>;
}> {
  // Asked for only by the migration that encrypts samples an older version stored in plaintext.
  const keyStore = () => openServiceKeyStore(options.dataDir);
  if (options.databaseUrl) {
    const dataSource = await openDatabase({ url: options.databaseUrl, poolSize: 2, entities: API_ENTITIES, migrations: API_MIGRATIONS, keyStore });
    return { dataSource, close: () => dataSource.destroy() };
  }
  const info = embeddedInfoPath(options.dataDir);
  if (existsSync(info)) {
    const { url, pid } = JSON.parse(readFileSync(info, 'utf8')) as { url: string; pid: number };
    if (isAlive(pid)) {
      const dataSource = await openDatabase({ url, poolSize: 2, entities: API_ENTITIES, migrations: API_MIGRATIONS, keyStore });
      return { dataSource, close: () => dataSource.destroy() };
    }
  }
  const clusterDir = join(options.dataDir, 'postgres');
  if (!existsSync(join(clusterDir, 'PG_VERSION')))
    throw new Error(`no database: set DATABASE_URL, or DATA_DIR to the service's data directory (${options.dataDir} has none)`);
  const embedded = await startEmbeddedPostgres({ dataDir: clusterDir, onNotice: (line) => process.stderr.write(`lethe-audit: ${line}\n`) });
  const dataSource = await openDatabase({
    url: await ensureDatabase(embedded.url, EMBEDDED_DATABASE_NAME),
    poolSize: 2,
    entities: API_ENTITIES,
    migrations: API_MIGRATIONS,
    keyStore,
  });
  return {
    dataSource,
    close: async () => {
      await dataSource.destroy();
      await embedded.stop();
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
