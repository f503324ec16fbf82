import { promises as fs } from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { CheckpointStore } from './checkpoint-store';
import { UnlearningError } from './errors';
import { removeFileDurably } from './durable-remove';
import { isHex32 } from './hash';

/**
 * Checkpoints as files under `<root>/checkpoints/<first 2 hex>/<hash>.bin` (a DATA_DIR-style layout).
 * A put writes a temp file in the same directory, fsyncs it, then renames it over the target, so a reader
 * never sees a half-written checkpoint; a delete unlinks the file and fsyncs its directory, so the removal
 * survives a crash once it resolved.
 */
export class FileCheckpointStore implements CheckpointStore {
  constructor(private readonly root: string) {}

  pathOf(hash: string): string {
    if (!isHex32(hash)) throw new UnlearningError('INVALID_REQUEST', `checkpoint hash must be 64 lowercase hex characters, got ${hash}`);
    return path.join(this.root, 'checkpoints', hash.slice(0, 2), `${hash}.bin`);
  }

  async get(hash: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await fs.readFile(this.pathOf(hash)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async has(hash: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(hash));
      return true;
    } catch {
      return false;
    }
  }

  async put(hash: string, bytes: Uint8Array): Promise<void> {
    const target = this.pathOf(hash);
    await fs.mkdir(path.dirname(target), { recursive: true });
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
  }

  async delete(hash: string): Promise<boolean> {
    return removeFileDurably(this.pathOf(hash));
  }
}
