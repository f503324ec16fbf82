/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadIris } from '@lethe/unlearning';
import { probeUntil } from '../support/probe';
import { startServiceOnFreePort } from '../support/service-process';

const ROOT = join(__dirname, '..', '..');

const waitFor = <T>(probe: () => Promise<T | undefined>, what: string) => probeUntil(probe, what, 90_000);

/** Runs `script` in a Node process from the repository's root; returns what it printed, as JSON. */
function runNode(script: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', './scripts/register.js', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}: ${err.slice(-2000)}`))));
  });
}

/**
 * Ctrl-C in a terminal: SIGINT to the service's whole process group. The service (`npm start` on its
 * embedded PostgreSQL) must still stop in order: hand back its running job, then stop PostgreSQL last,
 * cleanly (nothing to recover at the next start).
 */
describe('the service on Ctrl-C', () => {
  let dataDir: string;
  let service: ChildProcess | undefined;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'lethe-sigint-'));
    chmodSync(dataDir, 0o755); // as root, PostgreSQL runs as its own user, which must reach the cluster's folder
  });

  afterAll(() => {
    if (service?.exitCode === null && service.signalCode === null) process.kill(-service.pid!, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('hands back its running job and stops PostgreSQL cleanly when its process group gets SIGINT', async () => {
    const adminKey = randomBytes(24).toString('hex');
    // A process group of its own (detached), as a terminal gives a foreground job: SIGINT to -pid reaches it all.
    const started = await startServiceOnFreePort(
      {
        DATA_DIR: dataDir,
        DATABASE_URL: '',
        ANCHORING: 'off',
        LETHE_ADMIN_KEY: adminKey,
        JOB_POLL_SECONDS: '1',
        JOB_STOP_TIMEOUT_SECONDS: '2',
        TZ: 'Pacific/Chatham', // passed through to PostgreSQL on purpose: the control for what it must not get
      },
      { detached: true },
    );
    service = started.child;
    const { exited, api } = started;
    const call = async (method: string, path: string, key: string, body?: unknown) => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Its PostgreSQL does not see the admin key the service was given, and the file that tells other local
    // processes its URL (with the cluster's password) is for this user only.
    const postgresPid = Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const environ = readFileSync(`/proc/${postgresPid}/environ`, 'utf8');
    expect(environ).toContain('TZ=Pacific/Chatham');
    expect(environ).not.toContain(adminKey);
    expect(statSync(join(dataDir, 'embedded-postgres.json')).mode & 0o777).toBe(0o600);
    const ml = (await call('POST', '/v1/keys', adminKey, { role: 'ml', name: 'sigint' })).body.key;
    const datasetId = (await call('POST', '/v1/datasets', ml, { name: 'iris', features: 4, classes: 3 })).body.id;
    expect((await call('POST', `/v1/datasets/${datasetId}/samples`, ml, loadIris())).status).toBe(200);
    // Long enough to be caught running, and not to finish within JOB_STOP_TIMEOUT_SECONDS (training runs up to
    // 256 steps per onnxruntime call: 4,000 epochs of a 64-unit layer finished first on a quiet machine).
    const created = await call('POST', '/v1/models', ml, {
      datasetId,
      method: 'full',
      architecture: { type: 'mlp', hidden: [512] },
      epochs: 10000,
      batchSize: 4,
      learningRate: 0.01,
      seed: 1,
    });
    expect(created.status).toBe(202);
    const { jobId } = created.body;
    await waitFor(async () => {
      const job = (await call('GET', `/v1/jobs/${jobId}`, ml)).body;
      return job.state === 'running' && job.progress > 0 ? job : undefined;
    }, 'the job to run');

    process.kill(-service.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(started.output()).toContain('SIGINT: shutting down');
    expect(started.output()).toMatch(/\bstopped\b/);
    expect(started.output()).not.toMatch(/terminating connection|Connection terminated|while stopping/);
    const cluster = join(dataDir, 'postgres');
    expect(existsSync(join(cluster, 'postmaster.pid'))).toBe(false);

    // The next start finds a cluster that was shut down, not one to recover; the job waits to be retried.
    // (In a child process: the package is an ES module, which jest's sandbox cannot import.)
    const restart = await runNode(
      `const { startEmbeddedPostgres } = require('./libs/postgres/src');
       const { Client } = require('pg');
       (async () => {
         const logs = [];
         const pg = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(cluster)}, onLog: (line) => logs.push(line) });
         const client = new Client({ connectionString: pg.url.slice(0, -'postgres'.length) + 'lethe' });
         await client.connect();
         const { rows } = await client.query('SELECT state, worker_id, error FROM jobs WHERE id = $1', [${JSON.stringify(jobId)}]);
         await client.end();
         await pg.stop();
         process.stdout.write(JSON.stringify({ logs, job: rows[0] }));
       })().catch((e) => { console.error(e); process.exit(1); });`,
    );
    const logs = (restart.logs as string[]).join('\n');
    expect(logs).toContain('database system was shut down at');
    expect(logs).not.toMatch(/not properly shut down|automatic recovery|interrupted/);
    expect(restart.job).toEqual({ state: 'queued', worker_id: null, error: expect.stringContaining('worker stopped') });
  }, 600_000); // starting the service alone can take minutes on a loaded machine
});
