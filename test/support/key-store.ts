import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore, keyStoreDir } from '@lethe/keystore';

/** A real FileKeyStore in a throwaway DATA_DIR, for one test file. */
export interface TestKeyStore {
  keyStore: FileKeyStore;
  /** The DATA_DIR it lives in (DATA_DIR/keys). */
  dataDir: string;
  remove(): void;
}

export async function openTestKeyStore(): Promise<TestKeyStore> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lethe-keys-'));
  chmodSync(dataDir, 0o755); // as root, an embedded PostgreSQL in the same DATA_DIR runs as its own user
  const keyStore = await FileKeyStore.open({ dir: keyStoreDir(dataDir) });
  return { keyStore, dataDir, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
}

let shared: Promise<TestKeyStore> | undefined;

/** One key store for a whole test file (in a temp DATA_DIR removed when the process exits). */
export function sharedTestKeyStore(): Promise<FileKeyStore> {
  shared ??= openTestKeyStore().then((store) => {
    process.once('exit', () => store.remove());
    return store;
  });
  return shared.then((s) => s.keyStore);
}
