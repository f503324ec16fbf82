import { promises as fs } from 'fs';
import * as path from 'path';

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
  let dir: fs.FileHandle;
  try {
    dir = await fs.open(path.dirname(file), 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return removed; // no directory, no file
    throw error;
  }
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return removed;
}
