import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stripVTControlCharacters } from 'node:util';
import { DemoError } from './errors';

const REPO_ROOT = resolve(__dirname, '..', '..');
/** Lines of the service's output kept to show when something fails. */
const LOG_LINES_KEPT = 200;

export interface ServiceOptions {
  /** The child's whole environment (the demo's own, plus PORT, DATA_DIR, LETHE_ADMIN_KEY, ...). */
  env: NodeJS.ProcessEnv;
  baseUrl: string;
  /** Each line the service prints, as it prints it (--verbose). */
  onLine?: (line: string) => void;
}

/** /v1/health as the demo reads it. */
export interface Health {
  status: 'ok' | 'degraded';
  ledger?: { treeSize: number; rootHash: string };
  anchoring?: { state: string; chainId?: string; contract?: string; rpcUrl?: string; lastError?: string };
}

/**
 * The service as `npm start` runs it (`node -r ./scripts/register.js apps/api/src/main.ts` from the
 * repository root), in a child process of its own process group, so that a Ctrl-C in the terminal reaches
 * the demo only and the demo stops the service when it can stop cleanly (SIGTERM, then waits for it to exit).
 */
export class DemoService {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private spawnError?: Error;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;

  constructor(private readonly options: ServiceOptions) {
    this.child = spawn(process.execPath, ['-r', './scripts/register.js', 'apps/api/src/main.ts'], {
      cwd: REPO_ROOT,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const closed = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    this.exited = new Promise((resolve) => {
      // 'close' (its output read to the end) normally follows 'exit' at once; not when a process it started
      // still holds its stdout, so the wait for the last lines is short.
      this.child.once('exit', () => void Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]).then(() => resolve()));
      this.child.once('error', (error) => {
        // The process could not be started: no 'exit' follows.
        this.spawnError = error;
        this.keep(`could not run the service: ${error.message}`);
        resolve();
      });
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) createInterface({ input: stream }).on('line', (line) => this.keep(line));
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.spawnError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How the process ended, once it has. */
  get exitDescription(): string {
    if (this.child.signalCode !== null) return `signal ${this.child.signalCode}`;
    return this.child.exitCode !== null ? `code ${this.child.exitCode}` : this.spawnError?.message ?? 'still running';
  }

  /** The last `count` lines the service printed. */
  logTail(count = 20): string[] {
    return this.lines.slice(-count);
  }

  /** Resolves with /v1/health once it says `ok`; fails when the process exits first or after `timeoutMs`. */
  async waitUntilHealthy(timeoutMs: number): Promise<Health> {
    const deadline = Date.now() + timeoutMs;
    let last: Health | undefined;
    for (;;) {
      if (!this.running) {
        await this.exited; // its last lines read
        throw this.exitedError('the service did not start');
      }
      try {
        const res = await fetch(`${this.options.baseUrl}/v1/health`, { signal: AbortSignal.timeout(5000) });
        if (res.status === 200) {
          last = (await res.json()) as Health;
          if (last.status === 'ok') return last;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        const why = last
          ? `it answers /v1/health but stays ${last.status} (anchoring: ${last.anchoring?.state ?? '?'}${
              last.anchoring?.lastError ? `, ${last.anchoring.lastError}` : ''
            })`
          : 'it never answered /v1/health';
        throw new DemoError(`the service did not start in ${Math.round(timeoutMs / 1000)} s: ${why}`, this.logTail());
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** A DemoError saying the service exited, with the tail of its log. */
  exitedError(what: string): DemoError {
    return new DemoError(`${what}: the service exited (${this.exitDescription})`, this.logTail());
  }

  /**
   * Resolves once the service answers HTTP at all (its start-up is over), or has exited, or after
   * `timeoutMs`. Until then it has no SIGTERM handler: a signal would kill it and leave the PostgreSQL
   * and Hardhat processes it started (each in a process group of its own) running.
   */
  async waitUntilStarted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.running && Date.now() < deadline) {
      try {
        await fetch(`${this.options.baseUrl}/v1/health`, { signal: AbortSignal.timeout(2000) });
        // The handlers are installed right after the service starts listening.
        await new Promise((r) => setTimeout(r, 1000));
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** SIGTERM, then waits for the process to exit (SIGKILL after `timeoutMs`). The service stops its parts itself, in order. */
  async stop(timeoutMs = 60_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([this.exited.then(() => 'exited' as const), timer])) === 'timeout') {
      this.keep(`the service did not stop ${Math.round(timeoutMs / 1000)} s after SIGTERM; killing it`);
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  private keep(raw: string): void {
    const line = stripVTControlCharacters(raw); // Nest colours its log even into a pipe
    this.lines.push(line);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.shift();
    this.options.onLine?.(line);
  }
}
