import { mkdtempSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { FileCheckpointStore } from './file-checkpoint-store';
import { MemoryCheckpointStore } from './checkpoint-store';
import { sha256Hex } from './hash';

describe.each([
  ['FileCheckpointStore', () => new FileCheckpointStore(mkdtempSync(path.join(tmpdir(), 'lethe-ckpt-')))],
  ['MemoryCheckpointStore', () => new MemoryCheckpointStore()],
])('%s', (_, create) => {
  it('returns what was put, and undefined for unknown hashes', async () => {
    const store = create();
    const hash = sha256Hex('a');
    expect(await store.get(hash)).toBeUndefined();
    expect(await store.has(hash)).toBe(false);
    await store.put(hash, Uint8Array.from([1, 2, 3]));
    expect(Array.from((await store.get(hash)) as Uint8Array)).toEqual([1, 2, 3]);
    expect(await store.has(hash)).toBe(true);
    await store.put(hash, Uint8Array.from([4]));
    expect(Array.from((await store.get(hash)) as Uint8Array)).toEqual([4]);
  });
});

describe('FileCheckpointStore layout', () => {
  it('writes <root>/checkpoints/<2 hex>/<hash>.bin and leaves no temp files', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'lethe-ckpt-'));
    try {
      const store = new FileCheckpointStore(root);
      const hash = sha256Hex('b');
      await Promise.all([store.put(hash, new Uint8Array(1000).fill(7)), store.put(hash, new Uint8Array(1000).fill(7))]);
      expect(readdirSync(path.join(root, 'checkpoints', hash.slice(0, 2)))).toEqual([`${hash}.bin`]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a hash that is not lowercase hex', async () => {
    const store = new FileCheckpointStore(tmpdir());
    await expect(store.get('../../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });
});
