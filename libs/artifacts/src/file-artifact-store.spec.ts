import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ArtifactRef } from './artifact-store';
import { FileArtifactStore } from './file-artifact-store';

const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

describe('FileArtifactStore', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'lethe-artifacts-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('keeps checkpoints where FileCheckpointStore always did, and ONNX files by their SHA-256, leaving no temp file', async () => {
    const store = new FileArtifactStore(root);
    const checkpoint: ArtifactRef = { kind: 'checkpoint', address: sha('c') };
    const onnxBytes = Uint8Array.from([8, 1, 2]);
    const onnx: ArtifactRef = { kind: 'onnx', address: sha(onnxBytes) };
    await Promise.all([store.put(checkpoint, Uint8Array.from([1, 2])), store.put(checkpoint, Uint8Array.from([1, 2]))]);
    await store.put(onnx, onnxBytes);
    expect(readdirSync(path.join(root, 'checkpoints', checkpoint.address.slice(0, 2)))).toEqual([`${checkpoint.address}.bin`]);
    expect(readdirSync(path.join(root, 'onnx', onnx.address.slice(0, 2)))).toEqual([`${onnx.address}.onnx`]);
    expect(Array.from((await store.get(checkpoint))!)).toEqual([1, 2]);
    expect(Array.from((await store.get(onnx))!)).toEqual([8, 1, 2]);
    expect(await store.get({ kind: 'onnx', address: sha('other') })).toBeUndefined();
  });

  it('deletes for good (true), and deleting again is a no-op (false)', async () => {
    const store = new FileArtifactStore(root);
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha('d') };
    await store.put(ref, Uint8Array.from([3]));
    expect(await store.delete(ref)).toBe(true);
    expect([await store.has(ref), await store.get(ref), existsSync(store.pathOf(ref))]).toEqual([false, undefined, false]);
    expect(await store.delete(ref)).toBe(false);
  });

  it('refuses an ONNX file whose bytes are not its address, put or read (CORRUPT)', async () => {
    const store = new FileArtifactStore(root);
    const ref: ArtifactRef = { kind: 'onnx', address: sha('the real bytes') };
    await expect(store.put(ref, Buffer.from('other bytes'))).rejects.toMatchObject({ code: 'CORRUPT', address: ref.address });
    await store.put(ref, Buffer.from('the real bytes'));
    writeFileSync(store.pathOf(ref), 'the real byteZ'); // a bit flipped on disk
    await expect(store.get(ref)).rejects.toMatchObject({ code: 'CORRUPT', expectedSha256: ref.address, actualSha256: sha('the real byteZ') });
  });

  it('is UNAVAILABLE when its directory is not there (an unmounted volume), and creates nothing in its place', async () => {
    const missing = path.join(root, 'mnt', 'shared');
    const store = new FileArtifactStore(missing);
    const ref: ArtifactRef = { kind: 'checkpoint', address: sha('e') };
    await expect(store.put(ref, Uint8Array.from([1]))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(store.get(ref)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(store.has(ref)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(existsSync(path.join(root, 'mnt'))).toBe(false);
  });

  it.each([
    [{ kind: 'checkpoint', address: '../../etc/passwd' }, 'address'],
    [{ kind: 'checkpoint', address: 'AB'.repeat(32) }, 'address'],
    [{ kind: 'weights', address: 'ab'.repeat(32) }, 'kind'],
  ])('refuses a malformed reference %j before touching a path (INVALID_ARGUMENT naming %s)', async (ref, field) => {
    const store = new FileArtifactStore(root);
    await expect(store.get(ref as ArtifactRef)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
    await expect(store.has(ref as ArtifactRef)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
    await expect(store.delete(ref as ArtifactRef)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
  });
});
