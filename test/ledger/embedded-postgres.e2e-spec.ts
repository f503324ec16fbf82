import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** Runs `script` in a Node child (the package is an ES module, which jest's sandbox cannot import). */
function startNode(script: string): { lines: AsyncIterator<string>; kill(signal: NodeJS.Signals): void; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['-r', './scripts/register.js', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let err = '';
  let buffer = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      queue.push(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
    wake?.();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => (wake?.(), r(code))));
  const lines: AsyncIterator<string> = {
    next: async () => {
      while (queue.length === 0) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`the child exited (${child.exitCode ?? child.signalCode}): ${err.slice(-2000)}`);
        await new Promise<void>((r) => (wake = r));
      }
      return { value: queue.shift()!, done: false };
    },
  };
  return { lines, kill: (signal) => child.kill(signal), exited };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the embedded PostgreSQL after its service was killed', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lethe-orphan-'));
    chmodSync(dir, 0o755); // as root, PostgreSQL runs as its own user, which must reach the cluster's folder
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is stopped cleanly by the next start on the same directory, which then starts', async () => {
    const cluster = join(dir, 'pg');
    const start = (tail: string) => `const { startEmbeddedPostgres } = require('./libs/postgres/src');
      const { Client } = require('pg');
      (async () => {
        const logs = [];
        const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(cluster)}, onLog: (line) => logs.push(line) });
        ${tail}
      })().catch((e) => { console.error(e); process.exit(1); });`;
    // A service that is SIGKILLed: its PostgreSQL (in a session of its own) keeps running.
    const first = startNode(start(`process.stdout.write(pg.pid + '\\n'); setInterval(() => undefined, 1000);`));
    const orphan = Number((await first.lines.next()).value);
    first.kill('SIGKILL');
    await first.exited;
    expect(alive(orphan)).toBe(true);

    const second = startNode(
      start(`const client = new Client({ connectionString: pg.url });
        await client.connect();
        const { rows } = await client.query('SELECT 1 AS one');
        await client.end();
        await pg.stop();
        process.stdout.write(JSON.stringify({ logs, rows }) + '\\n');`),
    );
    const result = JSON.parse((await second.lines.next()).value) as { logs: string[]; rows: unknown[] };
    expect(await second.exited).toBe(0);
    expect(result.rows).toEqual([{ one: 1 }]);
    const logs = result.logs.join('\n');
    expect(logs).toContain(`stopping PostgreSQL (pid ${orphan}) left running`);
    expect(logs).not.toMatch(/automatic recovery/);
    expect(alive(orphan)).toBe(false);
  }, 120_000);
});
