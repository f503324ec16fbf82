import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '@lethe/postgres';
import { probeUntil } from './probe';

const REPO_ROOT = join(__dirname, '..', '..');

/** The service in a child process: everything it printed (stdout and stderr), and its exit code once it exits. */
export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * The service as `npm start` runs it (apps/api/src/main.ts from the repository's root) with `env` over this
 * process's environment, without colours. `detached` gives it a process group of its own, as a terminal gives
 * a foreground job (a signal to -pid then reaches all of it); `nodeArgs` go to Node before the script
 * (e.g. --max-old-space-size=512). `precompiled` (a folder from precompileSources, test/support/precompile.ts)
 * runs the same modules transpiled ahead of time instead of by ts-node at this start.
 */
export function startServiceProcess(
  env: Record<string, string>,
  options: { detached?: boolean; nodeArgs?: string[]; precompiled?: string } = {},
): ServiceProcess {
  const register =
    options.precompiled === undefined ? ['-r', './scripts/register.js'] : ['--enable-source-maps', '-r', './scripts/register-precompiled.js'];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...register, 'apps/api/src/main.ts'], {
    cwd: REPO_ROOT,
    detached: options.detached ?? false,
    env: { ...process.env, ...env, ...(options.precompiled === undefined ? {} : { LETHE_PRECOMPILED_DIR: options.precompiled }), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** A service started by startServiceOnFreePort: its port and base URL, and the output of every attempt. */
export interface ServiceOnPort extends ServiceProcess {
  port: number;
  api: string;
}

/** How many ports startServiceOnFreePort tries. */
const PORT_ATTEMPTS = 5;

/**
 * The service on a free port, once GET /v1/health answers 200. A port found free by binding and closing is
 * only free until another process binds it, and the service binds it seconds later (after its PostgreSQL
 * and its chain are up, which pick ports of their own): when the service exits because its port was taken
 * (EADDRINUSE), another port is picked and the service started again. `output()` holds every attempt's
 * output (a first admin key is printed only by the attempt that made it). A service that exits otherwise,
 * or does not answer within `healthTimeoutMs` (default 300 s: at load 30 here the service took 3.5 minutes to start), fails the call, killed first.
 */
export async function startServiceOnFreePort(
  env: Record<string, string>,
  options: { detached?: boolean; nodeArgs?: string[]; healthTimeoutMs?: number } = {},
): Promise<ServiceOnPort> {
  let earlier = '';
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const service = startServiceProcess({ ...env, PORT: String(port) }, options);
    const api = `http://127.0.0.1:${port}`;
    const ended = () => service.child.exitCode !== null || service.child.signalCode !== null;
    const deadline = Date.now() + (options.healthTimeoutMs ?? 300_000);
    for (;;) {
      if (ended()) {
        await closed(service.child); // what it printed last (the reason) may come after its exit
        if (/EADDRINUSE/.test(service.output()) && attempt < PORT_ATTEMPTS) break; // the port was taken: another
        throw new Error(`the service exited (${service.child.exitCode ?? service.child.signalCode}) before it answered on ${api}:\n${service.output().slice(-3000)}`);
      }
      if (await fetch(`${api}/v1/health`).then((r) => r.ok, () => false)) {
        const output = () => earlier + service.output();
        return { ...service, output, port, api };
      }
      if (Date.now() > deadline) {
        await stopService(service, options.detached ?? false);
        throw new Error(`the service did not answer on ${api} within ${options.healthTimeoutMs ?? 300_000} ms:\n${service.output().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await service.exited;
    earlier += service.output();
  }
}

/** Resolves once the child's output streams have closed (at most 10 s after it exited). */
async function closed(child: ChildProcess): Promise<void> {
  if (child.stdout!.closed && child.stderr!.closed) return;
  await Promise.race([new Promise((r) => child.once('close', r)), new Promise((r) => setTimeout(r, 10_000))]);
}

/** SIGTERM (a clean stop, its PostgreSQL included), SIGKILL after 20 s; resolves once it exited. */
async function stopService(service: ServiceProcess, detached: boolean): Promise<void> {
  const send = (signal: NodeJS.Signals) => {
    if (service.child.exitCode !== null || service.child.signalCode !== null) return;
    if (detached) process.kill(-service.child.pid!, signal);
    else service.child.kill(signal);
  };
  send('SIGTERM');
  const timer = setTimeout(() => send('SIGKILL'), 20_000);
  await service.exited;
  clearTimeout(timer);
}

/** Resolves once GET /v1/health of the service at `api` answers 200. */
export async function waitForHealth(api: string, timeoutMs = 120_000): Promise<void> {
  await probeUntil(async () => ((await fetch(`${api}/v1/health`)).ok ? true : undefined), `the service at ${api}`, timeoutMs);
}

/** A fresh DATA_DIR that PostgreSQL, run as its own user when the tests run as root, can reach. */
export function makeServiceDataDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** One JSON call to the service at `api` with an API key; the answer's status and parsed body. */
export async function callService(
  api: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
