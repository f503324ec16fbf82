import { existsSync, mkdtempSync, readdirSync, rmSync } from 'fs';
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

  it('deletes a checkpoint (true), and deleting it again or an unknown one is a no-op (false)', async () => {
    const store = create();
    const kept = sha256Hex('kept');
    const gone = sha256Hex('gone');
    await store.put(kept, Uint8Array.from([1]));
    await store.put(gone, Uint8Array.from([2]));
    expect(await store.delete(gone)).toBe(true);
    expect(await store.has(gone)).toBe(false);
    expect(await store.get(gone)).toBeUndefined();
    expect(await store.delete(gone)).toBe(false);
    expect(await store.delete(sha256Hex('never'))).toBe(false);
    expect(Array.from((await store.get(kept)) as Uint8Array)).toEqual([1]);
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
    await expect(store.delete('../../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('a delete removes the file from its directory and nothing else', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'lethe-ckpt-'));
    try {
      const store = new FileCheckpointStore(root);
      const hashes = ['c', 'd'].map((s) => sha256Hex(s));
      for (const hash of hashes) await store.put(hash, new Uint8Array(10).fill(1));
      expect(hashes.map((h) => existsSync(store.pathOf(h)))).toEqual([true, true]);
      await store.delete(hashes[0]);
      expect(hashes.map((h) => existsSync(store.pathOf(h)))).toEqual([false, true]);
      expect(readdirSync(path.dirname(store.pathOf(hashes[0]))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
