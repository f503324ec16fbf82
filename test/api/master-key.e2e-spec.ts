// LETHE_MASTER_KEY at the start of the real service: malformed or wrong, it stops the start naming the
// variable (never its value), before the database or anything in DATA_DIR is touched.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FileKeyStore, keyStoreDir } from '@lethe/keystore';
import { runScript } from '../support/run-script';
import { makeServiceDataDir } from '../support/service-process';

/** Every entry under `dir` with its size, content hash and mtime: what "changed nothing" compares. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const entry of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      const stat = await fs.stat(path);
      if (entry.isDirectory()) {
        out.push(`${path}/ ${stat.mtimeMs}`);
        await walk(path);
      } else out.push(`${path} ${stat.size} ${createHash('sha256').update(await fs.readFile(path)).digest('hex')} ${stat.mtimeMs}`);
    }
  };
  await walk(dir);
  return out;
}

describe('LETHE_MASTER_KEY at start-up', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = makeServiceDataDir('lethe-master-key-');
  });

  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  const start = (masterKey: string) =>
    runScript('apps/api/src/main.ts', [], { DATA_DIR: dataDir, DATABASE_URL: '', ANCHORING: 'off', PORT: '0', LETHE_MASTER_KEY: masterKey });

  it('stops on a malformed key, naming the variable and not the value, with DATA_DIR untouched', async () => {
    const malformed = `${randomBytes(31).toString('hex')}zz`;
    const result = await start(malformed);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'lethe: bad configuration: LETHE_MASTER_KEY: must be 64 hex characters or the base64 of 32 bytes; got 64 characters (the value is not shown)\n',
    );
    expect(result.stdout + result.stderr).not.toContain(malformed);
    expect(await fs.readdir(dataDir)).toEqual([]);
  });

  it('stops on a key that is not the one the stored keys were wrapped under, naming the variable, changing nothing', async () => {
    const store = await FileKeyStore.open({ dir: keyStoreDir(dataDir), masterKey: randomBytes(32).toString('hex') });
    await store.createKeys(3);
    const before = await snapshot(dataDir);
    const wrong = randomBytes(32).toString('base64');
    const result = await start(wrong);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^lethe: bad configuration: LETHE_MASTER_KEY: is the wrong master key for the key store in .*keys: it does not match master\.check/);
    expect(result.stderr).toContain('nothing was changed');
    expect(result.stdout + result.stderr).not.toContain(wrong);
    expect(await snapshot(dataDir)).toEqual(before); // no database started, no key file touched
  });
});
