import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ChainError } from './errors';
import { resolveRepoRoot } from './repo-root';

export interface StartHardhatNodeOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on; 127.0.0.1 unless given. */
  host?: string;
  /** How long to wait for JSON-RPC to answer; 60 s unless given. */
  startTimeoutMs?: number;
  /**
   * A file that names the running node and the process that started it (the service's is
   * DATA_DIR/hardhat-node.pid). The node runs in a process group of its own, so a process killed with
   * SIGKILL leaves it running, holding its port: a start naming the same file stops such a node first,
   * once it made sure that it is that node (same pid and start time, a `hardhat node` command line) and
   * that the process that started it is gone. A node whose starter still runs is an error, never a kill.
   */
  pidFile?: string;
  /** The launcher's notices (a node left running stopped), for the caller's log. */
  onNotice?: (line: string) => void;
}

export interface HardhatNode {
  rpcUrl: string;
  port: number;
  /** Stops the node (SIGTERM, then SIGKILL after 5 s) and resolves when it has exited. Idempotent. */
  stop(): Promise<void>;
  /** False once the node has exited (stopped, killed, crashed). */
  isRunning(): boolean;
}

/** Well-known private keys of the accounts a Hardhat node funds (test mnemonic); for local chains only. */
export const HARDHAT_DEV_PRIVATE_KEYS: readonly string[] = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
];

/**
 * Launches `hardhat node --hostname HOST --port PORT` (node_modules/.bin/hardhat, cwd = repo root) and
 * resolves once eth_chainId answers. Throws ChainError PORT_IN_USE when the port is taken, NODE_START_FAILED
 * when the node exits early, TIMEOUT when it does not answer in time.
 */
export async function startHardhatNode(options: StartHardhatNodeOptions): Promise<HardhatNode> {
  const host = options.host ?? '127.0.0.1';
  if (!Number.isSafeInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new ChainError('INVALID_ARGUMENT', `port ${options.port} is not an integer in 0..65535`);
  }
  if (options.pidFile !== undefined) await stopOrphanedNode(options.pidFile, options.onNotice ?? (() => undefined));
  if (options.port !== 0) return startOnPort(options, host, options.port);
  // A free port found by binding and closing is only free until someone else binds it, and the node binds
  // seconds later: a port taken meanwhile is picked again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnPort(options, host, await findFreePort(host));
    } catch (error) {
      if (!(error instanceof ChainError && error.code === 'PORT_IN_USE') || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

/** How many ports startHardhatNode tries when it picks them itself (port 0). */
const PORT_ATTEMPTS = 5;

async function startOnPort(options: StartHardhatNodeOptions, host: string, port: number): Promise<HardhatNode> {
  await assertPortFree(host, port);

  const root = resolveRepoRoot();
  const child = spawn(join(root, 'node_modules', '.bin', 'hardhat'), ['node', '--hostname', host, '--port', String(port)], {
    cwd: root,
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so stop() reaches anything hardhat starts
  });
  const rpcUrl = `http://${host}:${port}`;
  let output = '';
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-8000); // the node logs every request; keep the tail for errors
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const forgetPid = (): void => {
    if (options.pidFile !== undefined && readPidFile(options.pidFile)?.pid === child.pid) rmSync(options.pidFile, { force: true });
  };
  const killOnExit = (): void => {
    killGroup(child, 'SIGKILL');
    forgetPid();
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      forgetPid();
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      const code = /EADDRINUSE|already in use/i.test(output) ? 'PORT_IN_USE' : 'NODE_START_FAILED';
      throw new ChainError(code, `hardhat node on ${rpcUrl} exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-2000)}`);
    }
    if (await answersJsonRpc(rpcUrl)) {
      if (options.pidFile !== undefined) writePidFile(options.pidFile, { pid: child.pid!, startTime: startTimeOf(child.pid!)!, port, owner: process.pid, ownerStartTime: startTimeOf(process.pid)! });
      return { rpcUrl, port, stop, isRunning: () => child.exitCode === null && child.signalCode === null };
    }
    if (Date.now() > deadline) {
      await stop();
      throw new ChainError('TIMEOUT', `hardhat node on ${rpcUrl} did not answer JSON-RPC in time:\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What a pid file says: the node, and the process that started it, each with its start time (so a reused pid is not taken for it). */
interface NodePidFile {
  pid: number;
  startTime: string;
  port: number;
  owner: number;
  ownerStartTime: string;
}

function readPidFile(file: string): NodePidFile | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as NodePidFile;
  } catch {
    return undefined; // none, or torn: nothing to go by
  }
}

function writePidFile(file: string, content: NodePidFile): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(content)}\n`);
  renameSync(temporary, file);
}

/** Stops the node `file` names if it is still running and the process that started it is gone (see StartHardhatNodeOptions.pidFile). */
async function stopOrphanedNode(file: string, notice: (line: string) => void): Promise<void> {
  const recorded = readPidFile(file);
  if (recorded === undefined) return;
  const running = startTimeOf(recorded.pid) === recorded.startTime && isHardhatNode(recorded.pid, recorded.port);
  if (running && startTimeOf(recorded.owner) === recorded.ownerStartTime) {
    throw new ChainError(
      'NODE_START_FAILED',
      `the Hardhat node named in ${file} (pid ${recorded.pid}, port ${recorded.port}) belongs to process ${recorded.owner}, which is running: stop it, or use another DATA_DIR`,
    );
  }
  if (running) {
    notice(`stopping the Hardhat node (pid ${recorded.pid}) left running on port ${recorded.port} by a process that was killed`);
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-recorded.pid, signal);
      } catch {
        // gone already
      }
    };
    signalGroup('SIGTERM');
    const gone = async (ms: number) => {
      for (const deadline = Date.now() + ms; startTimeOf(recorded.pid) === recorded.startTime; ) {
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    };
    if (!(await gone(5000))) {
      signalGroup('SIGKILL');
      if (!(await gone(5000))) throw new ChainError('NODE_START_FAILED', `the Hardhat node (pid ${recorded.pid}) left running on port ${recorded.port} did not stop`);
    }
  }
  rmSync(file, { force: true });
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat, field 22); undefined when it is not running. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces, so count the fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs `hardhat node … --port <port>`. */
function isHardhatNode(pid: number, port: number): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.some((a) => a.endsWith('hardhat')) && args.includes('node') && args[args.indexOf('--port') + 1] === String(port);
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function answersJsonRpc(rpcUrl: string): Promise<boolean> {
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(2000),
    });
    const body = (await res.json()) as { result?: string };
    return typeof body.result === 'string';
  } catch {
    return false;
  }
}

function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new ChainError('PORT_IN_USE', `port ${port} on ${host} is in use; pick another port for the Hardhat node (or 0 for a free one)`));
      } else {
        reject(new ChainError('NODE_START_FAILED', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
      }
    });
    server.listen(port, host, () => server.close(() => resolvePromise()));
  });
}

function findFreePort(host: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}
