import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArtifactKind, ArtifactRef, ArtifactStore, checkRef, checkSha256 } from './artifact-store';
import { removeFileDurably, syncDirectory } from './durable-file';
import { ArtifactError } from './errors';

/** Folder and file suffix of each kind under the store's root (checkpoints where FileCheckpointStore always put them). */
const LAYOUT: Record<ArtifactKind, { folder: string; suffix: string }> = {
  checkpoint: { folder: 'checkpoints', suffix: '.bin' },
  onnx: { folder: 'onnx', suffix: '.onnx' },
};

/**
 * Artifacts as files under a root (DATA_DIR, the embedded default): `<root>/checkpoints/<2 hex>/<address>.bin`
 * and `<root>/onnx/<2 hex>/<sha256>.onnx`. Workers on several machines share it only through a shared volume.
 * A put writes a temp file in the target's directory, fsyncs it, renames it over the target and fsyncs the
 * directory; a delete unlinks and fsyncs the directory. The root itself is never created: a root that is not
 * there (an unmounted volume) is UNAVAILABLE, so a worker never fills a local folder in its place.
 * Deleted files' blocks return to the file system, which may keep their bytes until it reuses them: the root
 * belongs on an encrypted volume.
 */
export class FileArtifactStore implements ArtifactStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `files under ${root}`;
  }

  pathOf(ref: ArtifactRef): string {
    checkRef(ref);
    const { folder, suffix } = LAYOUT[ref.kind];
    return path.join(this.root, folder, ref.address.slice(0, 2), `${ref.address}${suffix}`);
  }

  async get(ref: ArtifactRef): Promise<Uint8Array | undefined> {
    const file = this.pathOf(ref);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.checkRoot();
      return undefined;
    }
    if (ref.kind === 'onnx') checkSha256(ref, bytes, ref.address, this.description);
    return bytes;
  }

  async has(ref: ArtifactRef): Promise<boolean> {
    const file = this.pathOf(ref);
    try {
      await fs.access(file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.checkRoot();
      return false;
    }
  }

  async put(ref: ArtifactRef, bytes: Uint8Array): Promise<void> {
    const target = this.pathOf(ref);
    if (ref.kind === 'onnx') checkSha256(ref, bytes, ref.address, this.description);
    const dir = path.dirname(target);
    await this.checkRoot();
    await fs.mkdir(dir, { recursive: true });
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await fs.open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.rename(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
    await syncDirectory(dir);
  }

  async delete(ref: ArtifactRef): Promise<boolean> {
    const file = this.pathOf(ref);
    await this.checkRoot();
    return removeFileDurably(file);
  }

  /** Unlinked files' blocks are the file system's already. */
  async reclaim(): Promise<void> {}

  async close(): Promise<void> {}

  private async checkRoot(): Promise<void> {
    try {
      if ((await fs.stat(this.root)).isDirectory()) return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    throw new ArtifactError('UNAVAILABLE', `the artifact store's directory ${this.root} is not there (an unmounted volume?)`, { store: this.description });
  }
}
