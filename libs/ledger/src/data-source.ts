import { Client } from 'pg';
import { DataSource, DataSourceOptions, MigrationInterface } from 'typeorm';
import { CheckpointEntity, LedgerHeadEntity } from './checkpoint.entity';
import { LedgerEntryEntity } from './ledger-entry.entity';
import { MerkleNodeEntity } from './merkle-node.entity';
import { CreateLedger1764216000000 } from './migrations/1764216000000-create-ledger';
import { CreateSamples1764216050000 } from './migrations/1764216050000-create-samples';
import { AddSamplePosition1764216200000 } from './migrations/1764216200000-add-sample-position';
import { KeyStoreProvider, encryptSamplesMigration } from './migrations/1764216625000-encrypt-samples';
import { IndexEntryKeys1764216610000 } from './migrations/1764216610000-index-entry-keys';
import { IndexCommitmentsRoots1764216620000 } from './migrations/1764216620000-index-commitments-roots';
import { IndexRetirementKeys1764216710000 } from './migrations/1764216710000-index-retirement-keys';
import { IndexEvidenceKeys1764216810000 } from './migrations/1764216810000-index-evidence-keys';
import { SampleExpiry1764217210000 } from './migrations/1764217210000-sample-expiry';
import { IndexDatasetVersions1764217100000 } from './migrations/1764217100000-index-dataset-versions';
import { IndexLatestDatasetVersion1764218000000 } from './migrations/1764218000000-index-latest-dataset-version';
import { IndexBiasScans1764218600000 } from './migrations/1764218600000-index-bias-scans';

/** The ledger's tables and migrations, for a service that adds its own. */
export const LEDGER_ENTITIES = [LedgerEntryEntity, MerkleNodeEntity, CheckpointEntity, LedgerHeadEntity];
/**
 * The ledger's migrations. Encrypting the samples of a database written before they were sealed needs the
 * key store, which `keyStore` gives when asked (only when there are samples to encrypt).
 */
export function ledgerMigrations(keyStore?: KeyStoreProvider): (new () => MigrationInterface)[] {
  return [
    CreateLedger1764216000000,
    CreateSamples1764216050000,
    AddSamplePosition1764216200000,
    IndexEntryKeys1764216610000,
    IndexCommitmentsRoots1764216620000,
    encryptSamplesMigration(keyStore),
    IndexRetirementKeys1764216710000,
    IndexEvidenceKeys1764216810000,
    IndexDatasetVersions1764217100000,
    SampleExpiry1764217210000,
    IndexLatestDatasetVersion1764218000000,
    IndexBiasScans1764218600000,
  ];
}

/** Advisory lock key under which migrations run ("lethe" in ASCII). */
const MIGRATION_LOCK = 0x6c65746865;

export interface DatabaseOptions {
  url: string;
  /** Extra entities and migrations of the caller (the API's datasets, models, ...). */
  entities?: DataSourceOptions['entities'];
  migrations?: (new () => MigrationInterface)[];
  poolSize?: number;
  /** The key store, for the migration that encrypts samples stored in plaintext by an older version. */
  keyStore?: KeyStoreProvider;
}

/**
 * A TypeORM data source on PostgreSQL, with the schema brought up to date by migrations
 * (never `synchronize`). Each migration runs in its own transaction.
 */
export async function openDatabase(options: DatabaseOptions): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: options.url,
    entities: [...LEDGER_ENTITIES, ...((options.entities as []) ?? [])],
    migrations: [...ledgerMigrations(options.keyStore), ...(options.migrations ?? [])],
    migrationsTableName: 'lethe_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: { max: options.poolSize ?? 10 },
  });
  await dataSource.initialize();
  // Several processes may start at once on one database: migrate under an advisory lock, held on a
  // connection of its own (outside the pool, which may have a single connection), so that exactly one
  // of them runs each migration.
  const lock = new Client({ connectionString: options.url });
  try {
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.runMigrations();
  } catch (error) {
    await dataSource.destroy();
    throw error;
  } finally {
    await lock.end().catch(() => undefined); // ending the session releases the lock
  }
  return dataSource;
}
