import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Syncs a directory, making the creation, rename or removal of its entries durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Unlinks a file and fsyncs its directory, so that the removal survives a crash once this resolved; returns
 * false when there was no file (the directory is synced all the same: an earlier call may have unlinked it
 * and failed before its sync). The file's blocks go back to the file system, which may keep their bytes
 * until it reuses them: what must never be read again belongs on an encrypted volume (or, as sample data,
 * under a key that is destroyed).
 */
export async function removeFileDurably(file: string): Promise<boolean> {
  let removed = true;
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    removed = false;
  }
  try {
    await syncDirectory(path.dirname(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return removed; // no directory, no file
    throw error;
  }
  return removed;
}
