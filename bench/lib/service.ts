// The service as `npm start` runs it, for the benches that measure it from outside: a child process on a
// throwaway embedded PostgreSQL and a local Hardhat chain with AuditAnchor deployed, and a JSON client of its API.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { HARDHAT_DEV_PRIVATE_KEYS, connectProvider, deployAuditAnchor, startHardhatNode } from '@lethe/chain';
import { findFreePort, startEmbeddedPostgres } from '@lethe/postgres';
import { createDatabase } from './bulk-load';

const ROOT = join(__dirname, '..', '..');
/** How long the service may take to answer its health check after it is started. */
const SERVICE_START_MS = 300_000;

/** A JSON client of the service with one API key. */
export class Client {
  constructor(readonly base: string, private readonly key: string) {}

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; ms: number }> {
    const t0 = performance.now();
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    return { status: res.status, body: text ? JSON.parse(text) : undefined, ms };
  }

  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const res = await this.call(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /**
   * POSTs an NDJSON body (samples, one JSON object a line); the upload's answer. Over node:http, not fetch:
   * the service answers once every sample is committed, and fetch (undici) gives up when no answer came in
   * 300 s, which an upload of 50,000 samples took at load 30.
   */
  async ndjson(path: string, lines: Iterable<string>): Promise<any> {
    const body = [...lines].join('\n');
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${this.base}${path}`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${this.key}`, 'content-type': 'application/x-ndjson', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let received = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (received += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: received }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    if (status >= 300) throw new Error(`POST ${path}: ${status} ${text.slice(0, 500)}`);
    return JSON.parse(text);
  }
}

/** Reads until `done` holds, every `everyMs`; throws naming `what` after `timeoutMs`. */
export async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The service in a child process, with an admin client; `stop` ends it and everything it stood on. */
export interface BenchService {
  base: string;
  admin: Client;
  /** The service's database (a client of its own may read its tables). */
  databaseUrl: string;
  /** Whether the service is still running, and the end of what it wrote on stderr (its errors): to say why a request failed. */
  status(): string;
  /** CPU seconds (user + system, every thread) the service's process has used so far (Linux: /proc/<pid>/stat). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc's CPU times. */
let clockTicks: number | undefined;

/** CPU seconds (user + system, every thread) process `pid` has used so far, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, in parentheses): utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * Starts a throwaway embedded PostgreSQL and Hardhat node (AuditAnchor deployed), then the service on them as
 * `npm start` runs it (anchoring every second, rate limit off, errors only in its log), with `env` on top.
 */
export async function startBenchService(name: string, env: Record<string, string> = {}): Promise<BenchService> {
  const dir = mkdtempSync(join(tmpdir(), `lethe-bench-${name}-`));
  chmodSync(dir, 0o755);
  const cleanups: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), persistent: false });
    cleanups.push(() => pg.stop());
    const node = await startHardhatNode({ port: 0 });
    cleanups.push(() => node.stop());
    const provider = await connectProvider(node.rpcUrl, { pollingIntervalMs: 50 });
    const signer = new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0], provider);
    const contract = await deployAuditAnchor(signer, signer.address, signer.address);
    provider.destroy();
    const port = await findFreePort();
    const adminKey = randomBytes(24).toString('hex');
    const databaseUrl = await createDatabase(pg.url, `bench_${name.replace(/[^a-z0-9]/gi, '_')}`);
    const { child, stderr } = await startService(
      {
        ...process.env,
        PORT: String(port),
        DATA_DIR: join(dir, 'data'),
        DATABASE_URL: databaseUrl,
        RPC_URL: node.rpcUrl,
        CONTRACT_ADDRESS: contract.address,
        ANCHORER_PRIVATE_KEY: HARDHAT_DEV_PRIVATE_KEYS[0],
        ANCHOR_EVERY_SECONDS: '1',
        LETHE_ADMIN_KEY: adminKey,
        RATE_LIMIT_PER_MINUTE: '0',
        LOG_LEVEL: 'error',
        ...env,
      },
      port,
    );
    cleanups.push(() => stopService(child));
    const base = `http://127.0.0.1:${port}`;
    const status = () =>
      `${child.exitCode === null && child.signalCode === null ? 'running' : `exited (code ${child.exitCode}, signal ${child.signalCode})`}; stderr: ${stderr().slice(-3000)}`;
    return { base, admin: new Client(base, adminKey), databaseUrl, status, cpuSeconds: () => processCpuSeconds(child.pid!), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `npm start` as a child process with `env`; resolves once GET /v1/health on `port` says ok. */
export async function startService(env: NodeJS.ProcessEnv, port: number): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, ['-r', './scripts/register.js', 'apps/api/src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-100_000)));
  // Starting compiles the service's TypeScript: minutes on a loaded 2-core machine.
  const deadline = Date.now() + SERVICE_START_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/health`);
      const body = (await res.json()) as { status: string };
      if (res.status === 200 && body.status === 'ok') return { child, stderr: () => stderr };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not become healthy in ${SERVICE_START_MS / 1000} s: ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stops a child process: SIGTERM (it finishes or hands back its jobs), SIGKILL after 10 s. */
export async function stopService(service: ChildProcess): Promise<void> {
  if (service.exitCode !== null) return;
  const exited = new Promise((r) => service.once('exit', r));
  service.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (service.exitCode === null) service.kill('SIGKILL');
}

/**
 * `npm run worker` as a child process with `env`; resolves once it takes jobs. Its log level stays `log`: the
 * line that says it takes jobs is a `log` line (only the last 4 KB of what it prints are kept, for errors).
 */
export function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-r', './scripts/register.js', 'apps/api/src/worker.ts'], {
    cwd: ROOT,
    env: { ...env, LOG_LEVEL: 'log' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    let started = false;
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-4096);
      if (!started && output.includes('takes jobs')) {
        started = true;
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`a worker exited with ${code} before taking jobs: ${output}`)));
  });
}
