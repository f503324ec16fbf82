import { FileKeyStore, KeyStoreError, MASTER_KEY_VARIABLE, keyStoreDir } from '@lethe/keystore';
import { ConfigError } from './config';

/**
 * The service's key store: DATA_DIR/keys, wrapped under LETHE_MASTER_KEY (or the master.key generated there
 * at first start). Opened before the database, so that a malformed or wrong master key stops the start with
 * a ConfigError naming LETHE_MASTER_KEY, having changed nothing (FileKeyStore.open checks before it writes).
 */
export async function openServiceKeyStore(dataDir: string, env: Record<string, string | undefined> = process.env): Promise<FileKeyStore> {
  const raw = env[MASTER_KEY_VARIABLE];
  try {
    return await FileKeyStore.open({ dir: keyStoreDir(dataDir), masterKey: raw === undefined || raw.trim() === '' ? undefined : raw });
  } catch (error) {
    if (error instanceof KeyStoreError && error.variable === MASTER_KEY_VARIABLE) {
      throw new ConfigError(MASTER_KEY_VARIABLE, error.message.replace(new RegExp(`^${MASTER_KEY_VARIABLE} `), ''));
    }
    throw error;
  }
}

/** openServiceKeyStore, or the process stops (exit 2) with `<program>: bad configuration: LETHE_MASTER_KEY: …`. */
export async function openServiceKeyStoreOrExit(program: string, dataDir: string): Promise<FileKeyStore> {
  try {
    return await openServiceKeyStore(dataDir);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${program}: bad configuration: ${error.message}\n`);
    process.exit(2);
  }
}
