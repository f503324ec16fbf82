import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * (e.g. --max-old-space-size=512).
 */
export function startServiceProcess(env: Record<string, string>, options: { detached?: boolean; nodeArgs?: string[] } = {}): ServiceProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '-r', './scripts/register.js', 'apps/api/src/main.ts'], {
    cwd: REPO_ROOT,
    detached: options.detached ?? false,
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Resolves once GET /v1/health of the service at `api` answers 200. */
export async function waitForHealth(api: string, timeoutMs = 60_000): Promise<void> {
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
