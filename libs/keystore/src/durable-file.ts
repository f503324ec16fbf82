// Files that survive a crash once a call returns: written through a synced temp file, named by a link, and
// made durable by syncing their directory; removed by overwriting, unlinking and syncing the directory.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/** Temp files are `.<name>.<random>.tmp` in the target's directory. */
export const TEMP_FILE = /^\..+\.[0-9a-f]{12}\.tmp$/;

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
 * Creates `dir/name` with `bytes` and mode 600 unless it exists: writes and syncs a temp file, links it to
 * the name (atomic, and it fails when the name exists, where a rename would silently replace it), removes
 * the temp name and syncs the directory. Returns false, writing nothing, when `name` exists already.
 * A reader sees the whole file or none; after a crash there is the whole file or none (and at most a
 * stale temp file, which `removeStaleTempFiles` clears).
 */
export async function createFileExclusive(dir: string, name: string, bytes: Uint8Array): Promise<boolean> {
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  let created = true;
  try {
    await fs.link(temp, join(dir, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      await fs.rm(temp, { force: true });
      throw error;
    }
    created = false;
  }
  await fs.unlink(temp);
  await syncDirectory(dir);
  return created;
}

/** Opens `path` with `flags` ('r', 'r+'), or undefined when there is no such file. */
export async function openIfPresent(path: string, flags: string): Promise<fs.FileHandle | undefined> {
  try {
    return await fs.open(path, flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes `dir/name` durably: overwrites its bytes with zeros and syncs them (so that a second link to the
 * same inode, e.g. a temp name left by a crash, holds nothing either, and the blocks are overwritten where
 * the file system writes in place), unlinks it and syncs the directory. Returns false when there was no file.
 */
export async function destroyFile(dir: string, name: string): Promise<boolean> {
  const path = join(dir, name);
  const handle = await openIfPresent(path, 'r+');
  if (!handle) return false;
  try {
    const { size } = await handle.stat();
    if (size > 0) {
      await handle.write(Buffer.alloc(size), 0, size, 0);
      await handle.datasync();
    }
  } finally {
    await handle.close();
  }
  try {
    await fs.unlink(path);
  } catch (error) {
    // A concurrent destroy got there first: gone either way.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await syncDirectory(dir);
  return true;
}

/**
 * Unlinks temp files older than `olderThanMs` (left by a crash mid-write; younger ones may belong to a
 * write in progress in another process) and syncs the directory if any went. Only unlinks: a crash between
 * `link` and `unlink` leaves the temp name on the inode of a live file, whose bytes must stay. Returns how
 * many went.
 */
export async function removeStaleTempFiles(dir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(dir)) {
    if (!TEMP_FILE.test(name)) continue;
    const path = join(dir, name);
    const stat = await fs.lstat(path).catch(() => undefined);
    if (stat === undefined || now - stat.mtimeMs < olderThanMs) continue;
    await fs.rm(path, { force: true });
    removed++;
  }
  if (removed > 0) await syncDirectory(dir);
  return removed;
}
