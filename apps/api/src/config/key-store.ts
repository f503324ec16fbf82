import { join } from 'node:path';
import { FileKeyStore, KeyStore, KeyStoreError, MASTER_KEY_FILE, MASTER_KEY_VARIABLE, PostgresKeyStore, keyStoreDir, readMasterKeyFile } from '@lethe/keystore';
import { ConfigError } from './config';

/** Where the data keys are: `files` (DATA_DIR/keys) or `postgres` (the database, as rows: what workers on other machines reach). */
export type KeyStoreMode = 'files' | 'postgres';

/** The key store a process opens, and what closes it. */
export type ServiceKeyStore = KeyStore & { readonly description?: string; close?(): Promise<void> };

/** KEY_STORE, or its default: `postgres` when DATABASE_URL is set (not the embedded PostgreSQL), else `files`. */
export function keyStoreMode(env: Record<string, string | undefined>, databaseUrl: string | undefined): KeyStoreMode {
  const raw = env.KEY_STORE?.trim() || (databaseUrl === undefined ? 'files' : 'postgres');
  if (raw !== 'files' && raw !== 'postgres') throw new ConfigError('KEY_STORE', `must be one of files, postgres, got "${raw}"`);
  if (raw === 'postgres' && databaseUrl === undefined) throw new ConfigError('KEY_STORE', 'is "postgres", which needs DATABASE_URL');
  return raw;
}

/**
 * The service's key store, opened before the database is migrated, so that a malformed or wrong master key
 * stops the start with a ConfigError naming LETHE_MASTER_KEY, having changed nothing:
 * - `files`: DATA_DIR/keys, wrapped under LETHE_MASTER_KEY (or the master.key generated there at first start);
 * - `postgres` (DATABASE_URL): key pages as rows of the database, wrapped under LETHE_MASTER_KEY, which every
 *   process of the deployment is given (DATA_DIR/keys/master.key stands in for it where it exists; at the very
 *   first start, with neither, one is generated there). Keys left in DATA_DIR/keys by the file store move in
 *   at start (PostgresKeyStore.importFiles), and their files are destroyed.
 */
export async function openServiceKeyStore(
  dataDir: string,
  env: Record<string, string | undefined> = process.env,
  databaseUrl?: string,
  log: (message: string) => void = () => undefined,
): Promise<ServiceKeyStore> {
  const raw = env[MASTER_KEY_VARIABLE];
  const given = raw === undefined || raw.trim() === '' ? undefined : raw;
  const dir = keyStoreDir(dataDir);
  try {
    if (keyStoreMode(env, databaseUrl) === 'files') return await FileKeyStore.open({ dir, masterKey: given });
    const url = databaseUrl!;
    let masterKey = given;
    let source: string = MASTER_KEY_VARIABLE;
    if (masterKey === undefined) {
      source = `${join(dir, MASTER_KEY_FILE)} (read because ${MASTER_KEY_VARIABLE} is unset)`;
      if ((await readMasterKeyFile(dir)) === undefined && (await PostgresKeyStore.isInitialized(url))) {
        throw new KeyStoreError(
          'MASTER_KEY_MISSING',
          `${MASTER_KEY_VARIABLE} is unset, but the key store in the database holds keys: set ${MASTER_KEY_VARIABLE} to the master key they were wrapped under (every worker needs it); nothing was changed`,
          { variable: MASTER_KEY_VARIABLE },
        );
      }
      // The master.key of this DATA_DIR (made now, at the very first start), checked as FileKeyStore checks it.
      await FileKeyStore.open({ dir });
      masterKey = (await readMasterKeyFile(dir))!.toString('hex');
    }
    const store = await PostgresKeyStore.open({ url, masterKey, masterKeySource: source });
    const moved = await store.importFiles(dir).catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    if (moved > 0) log(`key store: ${moved} data key(s) moved from ${dir} into ${store.description}, their files destroyed`);
    return store;
  } catch (error) {
    if (error instanceof KeyStoreError && error.variable === MASTER_KEY_VARIABLE) {
      throw new ConfigError(MASTER_KEY_VARIABLE, error.message.replace(new RegExp(`^${MASTER_KEY_VARIABLE} `), ''));
    }
    throw error;
  }
}

/** openServiceKeyStore, or the process stops (exit 2) with `<program>: bad configuration: LETHE_MASTER_KEY: …`. */
export async function openServiceKeyStoreOrExit(program: string, dataDir: string, databaseUrl?: string): Promise<ServiceKeyStore> {
  try {
    return await openServiceKeyStore(dataDir, process.env, databaseUrl, (m) => process.stdout.write(`${program}: ${m}\n`));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${program}: bad configuration: ${error.message}\n`);
    process.exit(2);
  }
}
