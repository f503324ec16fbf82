/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { findFreePort } from '@lethe/postgres';
import { LabeledExample, Sample, TrainingConfigInput, loadIris } from '@lethe/unlearning';
import { fromScratchSha256 } from '../support/from-scratch';
import { waitFor } from '../support/probe';
import { ServiceOnPort, callService, makeServiceDataDir, startServiceOnFreePort } from '../support/service-process';
import { runCli } from '../verifier/support/run-cli';

const REPO_ROOT = join(__dirname, '..', '..');
const MASTER_KEY = randomBytes(32).toString('hex');
const ADMIN_KEY = randomBytes(24).toString('hex');
const JOBS = {
  JOB_EXPIRE_SECONDS: '600',
  JOB_RETRY_LIMIT: '50',
  JOB_RETRY_DELAY_SECONDS: '1',
  JOB_POLL_SECONDS: '1',
  JOB_MAINTENANCE_SECONDS: '1',
  JOB_LOST_AFTER_SECONDS: '6',
};

/** `npm run worker` as an operator starts it on another machine: its own empty DATA_DIR, the database URL and the master key. */
function startWorker(name: string, databaseUrl: string, dataDir: string, onOutput: (text: string) => void, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn('npm', ['run', '--silent', 'worker'], {
    cwd: REPO_ROOT,
    detached: true, // its own process group: npm, the shell and node are stopped together
    env: { ...process.env, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LETHE_MASTER_KEY: MASTER_KEY, WORKER_NAME: name, NO_COLOR: '1', ...JOBS, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      onOutput(chunk.toString());
      if (output.includes('takes jobs')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`worker ${name} exited (${code}) before it took jobs:\n${output}`)));
  });
}

/** PostgreSQL 15's binaries (Debian's package), run as the user `postgres`. */
const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * A PostgreSQL server of its own, as an operator runs one for a deployment: initdb and postgres from PG_BIN
 * as the user `postgres`, on a free port of 127.0.0.1 (trust authentication: the test's own machine).
 */
async function startPostgresServer(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const cluster = join(dir, 'cluster');
  mkdirSync(cluster, { mode: 0o700 });
  const { uid, gid } = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  chownSync(cluster, uid, gid);
  execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'initdb'), '-D', cluster, '-U', 'postgres', '-A', 'trust', '--no-sync'], { stdio: 'ignore' });
  const port = await findFreePort();
  const server = spawn('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'postgres'), '-D', cluster, '-p', String(port), '-k', cluster, '-c', 'listen_addresses=127.0.0.1'], {
    detached: true, // its own process group: runuser does not pass signals on, the group reaches postgres itself
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  server.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  await waitFor(
    async () => log.includes('database system is ready to accept connections') || server.exitCode !== null,
    (ready) => ready,
    60_000,
  );
  if (server.exitCode !== null) throw new Error(`PostgreSQL did not start:\n${log}`);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      process.kill(-server.pid!, 'SIGINT'); // postgres: a fast shutdown
      await exited;
    },
  };
}

/**
 * A network link to a server that is cut: it accepts a TCP connection and drops it at once, as a firewall or a
 * partition between a worker's machine and its artifact database would (the client sees its connection end).
 */
async function startCutLink(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

function signalGroup(child: ChildProcess, signal: 'SIGSTOP' | 'SIGCONT'): void {
  process.kill(-child.pid!, signal);
}

function stopGroup(child: ChildProcess | undefined): void {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

interface TaskView {
  shard: number;
  state: string;
  worker: string | null;
  attempts: number;
  error?: string;
}

/**
 * Issue 17 item 5: the service (SERVICE_WORKER=off) and two `npm run worker` processes, each with its own empty
 * DATA_DIR, sharing only DATABASE_URL of a PostgreSQL this test starts apart from all of them (and the master key,
 * a secret like the database password). A SISA training and a forget fan out over the two workers; `lethe-audit
 * replay` reproduces both versions, and the trained bytes equal one process's training. Then a fault: a corrupt
 * checkpoint (its bytes no longer hash to their address) fails the shard that needs it, clearly, on whichever
 * worker takes it, again and again, and nothing is published meanwhile; once the bytes are put back the task
 * succeeds on its next attempt and the version is the one a replay reproduces.
 */
describe('workers on machines apart, sharing only the database', () => {
  let postgres: { url: string; stop: () => Promise<void> };
  let databaseUrl: string;
  let db: Client;
  let service: ServiceOnPort;
  let api: string;
  const workers: ChildProcess[] = [];
  const logs: Record<string, string> = { alpha: '', beta: '', gamma: '' };
  let cutLink: { port: number; close: () => Promise<void> } | undefined;
  const dirs: string[] = [];
  const iris = loadIris();
  let ml: string;
  let auditor: string;
  let datasetId: string;
  let modelId: string;
  const commitments = new Map<string, string>();
  const config: TrainingConfigInput = {
    method: 'sisa',
    model: 'mlp',
    hiddenLayers: [16],
    numFeatures: 4,
    numClasses: 3,
    shards: 4,
    slices: 2,
    epochs: 200,
    batchSize: 4,
    learningRate: 0.05,
    seed: 'workers-apart',
  };
  const call = (method: string, path: string, key: string, body?: unknown) => callService(api, method, path, key, body);
  const dataFile = (name: string, rows: LabeledExample[]): string => {
    const file = join(dirs[0], name);
    writeFileSync(file, rows.map((s) => JSON.stringify({ externalId: s.externalId, features: Array.from(s.features), label: s.label })).join('\n'));
    return file;
  };
  const jobOf = (jobId: string) =>
    waitFor(
      async () => (await call('GET', `/v1/jobs/${jobId}`, ml)).body,
      (j) => j.state === 'completed' || j.state === 'failed',
      300_000,
    );
  /** The externalIds of slice `slice` of shard `shard` of version 1, as its training's shard task had them. */
  const sliceOf = async (shard: number, slice: number): Promise<string[]> => {
    const [task] = (await db.query(`SELECT input FROM job_tasks WHERE model_id = $1 AND version = 1 AND shard = $2`, [modelId, shard])).rows;
    const byCommitment = new Map([...commitments].map(([externalId, commitment]) => [commitment, externalId]));
    return (task.input.commitments[slice] as string[]).map((c) => byCommitment.get(c)!);
  };
  const gone = new Set<string>();
  const forget = async (externalIds: string[]) => {
    const created = await call('POST', '/v1/forget-requests', ml, { datasetId, externalIds, reason: 'erasure' });
    expect(created.status).toBe(202);
    return created.body as { id: string; jobId: string };
  };

  beforeAll(async () => {
    // A PostgreSQL of its own, apart from the tests' server and from every process of the deployment.
    const pgDir = makeServiceDataDir('lethe-apart-pg-');
    dirs.push(pgDir);
    postgres = await startPostgresServer(pgDir);
    const admin = new Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE lethe_apart');
    await admin.end();
    const url = new URL(postgres.url);
    url.pathname = '/lethe_apart';
    databaseUrl = url.toString();
    db = new Client({ connectionString: databaseUrl });
    await db.connect();

    const serviceDir = makeServiceDataDir('lethe-apart-service-');
    dirs.push(serviceDir);
    service = await startServiceOnFreePort(
      {
        DATABASE_URL: databaseUrl,
        DATA_DIR: serviceDir,
        SERVICE_WORKER: 'off',
        ANCHORING: 'off',
        LETHE_ADMIN_KEY: ADMIN_KEY,
        LETHE_MASTER_KEY: MASTER_KEY,
        ...JOBS,
      },
    );
    api = service.api;
    for (const name of ['alpha', 'beta']) {
      const dir = mkdtempSync(join(tmpdir(), `lethe-apart-${name}-`));
      dirs.push(dir);
      workers.push(await startWorker(name, databaseUrl, dir, (text) => (logs[name] += text)));
    }
    ml = (await call('POST', '/v1/keys', ADMIN_KEY, { role: 'ml', name: 'ml' })).body.key;
    auditor = (await call('POST', '/v1/keys', ADMIN_KEY, { role: 'auditor', name: 'auditor' })).body.key;
  }, 600_000);

  afterAll(async () => {
    for (const child of workers) stopGroup(child);
    await cutLink?.close();
    if (service) {
      service.child.kill('SIGINT');
      await Promise.race([service.exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    }
    await db?.end();
    await postgres?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('trains SISA over both workers; the bytes equal one process`s training, and lethe-audit replay reproduces them', async () => {
    const created = await call('POST', '/v1/datasets', ml, { name: 'iris-apart', features: 4, classes: 3 });
    datasetId = created.body.id;
    const uploaded = await call(
      'POST',
      `/v1/datasets/${datasetId}/samples`,
      ml,
      iris.map((s) => ({ externalId: s.externalId, features: Array.from(s.features), label: s.label })),
    );
    expect(uploaded.body.accepted).toBe(iris.length);
    for (const c of uploaded.body.commitments as { externalId: string; commitment: string }[]) commitments.set(c.externalId, c.commitment);

    const model = await call('POST', '/v1/models', ml, {
      datasetId,
      method: 'sisa',
      shards: 4,
      slices: 2,
      architecture: { type: 'mlp', hidden: [16] },
      epochs: 200,
      batchSize: 4,
      learningRate: 0.05,
      seed: 'workers-apart',
    });
    expect(model.status).toBe(202);
    modelId = model.body.modelId;
    const job = await jobOf(model.body.jobId);
    expect(job).toMatchObject({ state: 'completed', result: { modelId, version: 1 } });
    expect(job.tasks.map((t: TaskView) => t.shard)).toEqual([0, 1, 2, 3]);
    for (const task of job.tasks as TaskView[]) expect(task).toMatchObject({ state: 'completed', worker: expect.stringMatching(/^(alpha|beta):/) });

    // The service and the workers keep nothing under their DATA_DIRs but what each needs alone: no key, no checkpoint, no model file.
    for (const dir of dirs.slice(1)) {
      const names = readdirSync(dir, { recursive: true }) as string[];
      expect(names.filter((n) => /\.(keys|dek|bin|onnx)$/.test(n))).toEqual([]);
    }
    // The keys and the artifacts are in the database.
    expect((await db.query(`SELECT count(*)::int AS n FROM key_pages`)).rows[0].n).toBeGreaterThan(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM artifacts WHERE kind = 'checkpoint'`)).rows[0].n).toBeGreaterThan(0);

    const { body: described } = await call('GET', `/v1/models/${modelId}`, ml);
    const samples: Sample[] = iris.map((s) => ({ ...s, features: Array.from(s.features), commitment: commitments.get(s.externalId)! }));
    expect(described.versions[0].onnxSha256).toBe(await fromScratchSha256(config, samples));
    const replay = await runCli(['replay', '--model', modelId, '--version', '1', '--data', dataFile('all.ndjson', iris), '--api', api, '--api-key', auditor]);
    expect(replay.stdout).toContain(`equals the published one`);
    expect(replay.code).toBe(0);
  }, 400_000);

  it('forgets over both workers, and lethe-audit replay reproduces the version that forgot', async () => {
    // Two samples of two shards (shard 1 from its first slice, shard 2 from its second): two shard tasks.
    for (const id of [(await sliceOf(1, 0))[0], (await sliceOf(2, 1))[0]]) gone.add(id);
    const request = await forget([...gone]);
    const pass = await jobOf(request.jobId);
    expect(pass.state).toBe('completed');
    expect(pass.tasks.length).toBeGreaterThanOrEqual(2);
    // Both workers took shard tasks (of the training or of this pass): the work was spread, not done by one.
    const { rows: takers } = await db.query(`SELECT DISTINCT split_part(worker_id, ':', 1) AS name FROM job_tasks WHERE model_id = $1 ORDER BY 1`, [modelId]);
    expect(takers.map((r: { name: string }) => r.name)).toEqual(['alpha', 'beta']);
    for (const task of pass.tasks as TaskView[]) expect(task).toMatchObject({ version: 2, state: 'completed', worker: expect.stringMatching(/^(alpha|beta):/) });
    const surviving = iris.filter((s) => !gone.has(s.externalId));
    const replay = await runCli(['replay', '--model', modelId, '--version', '2', '--data', dataFile('surviving.ndjson', surviving), '--api', api, '--api-key', auditor]);
    expect(replay.stdout).toContain(`equals the published one`);
    expect(replay.code).toBe(0);
  }, 400_000);

  /** Nothing of `version` anywhere: no row, no MODEL_PUBLISHED in the log. */
  const expectUnpublished = async (version: number) => {
    expect((await db.query(`SELECT count(*)::int AS n FROM model_versions WHERE model_id = $1 AND version = $2`, [modelId, version])).rows[0].n).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE type = 'MODEL_PUBLISHED' AND event LIKE $1`, [`%"modelVersion":${version}%${modelId}%`])).rows[0].n).toBe(0);
  };
  const replayVersion = async (version: number) => {
    const surviving = iris.filter((s) => !gone.has(s.externalId));
    const replay = await runCli(['replay', '--model', modelId, '--version', String(version), '--data', dataFile(`surviving${version}.ndjson`, surviving), '--api', api, '--api-key', auditor]);
    expect(replay.stdout).toContain(`equals the published one`);
    expect(replay.code).toBe(0);
  };

  it('a corrupt checkpoint fails its shard clearly on whichever worker takes it, nothing is published; with its bytes back, the version is published', async () => {
    // A sample in slice 1 of shard 0 (untouched so far): its forget resumes that shard from the checkpoint
    // after slice 0; and one of shard 3, so that the pass trains two shards (two shard tasks).
    const shard = 0;
    const victims = [(await sliceOf(0, 1))[0], (await sliceOf(3, 0))[0]];
    const [version] = (await db.query(`SELECT engine_state FROM model_versions WHERE model_id = $1 AND version = 2`, [modelId])).rows;
    const checkpoint: string = version.engine_state.shards[shard].slices[0].checkpoint;
    const original = (await db.query(`SELECT seq, data FROM artifact_chunks WHERE kind = 'checkpoint' AND address = $1 ORDER BY seq`, [checkpoint])).rows;
    expect(original.length).toBeGreaterThan(0);
    await db.query(`UPDATE artifact_chunks SET data = set_byte(data, 0, get_byte(data, 0) # 1) WHERE kind = 'checkpoint' AND address = $1 AND seq = 0`, [checkpoint]);

    const request = await forget(victims);
    // The shard's task fails, naming the corrupt checkpoint, and is tried again (any worker may take it).
    const failing = await waitFor(
      async () => (await call('GET', `/v1/jobs/${request.jobId}`, ml)).body,
      (j) => (j.tasks ?? []).some((t: TaskView) => t.shard === shard && t.attempts >= 3),
      300_000,
    );
    const task = (failing.tasks as TaskView[]).find((t) => t.shard === shard)!;
    expect(task.error).toMatch(new RegExp(`CORRUPT.*${checkpoint}|${checkpoint}.*(SHA-256|CORRUPT)`));
    expect(`${logs.alpha}\n${logs.beta}`).toContain(`shard ${shard} of model ${modelId} version 3 will be retried`);
    // Nothing half-written: no version 3, not in the store and not in the log.
    await expectUnpublished(3);

    // The bytes put back (a restore): the next attempt succeeds, and the version is the one a replay reproduces.
    for (const row of original) await db.query(`UPDATE artifact_chunks SET data = $3 WHERE kind = 'checkpoint' AND address = $1 AND seq = $2`, [checkpoint, row.seq, row.data]);
    const pass = await jobOf(request.jobId);
    expect(pass.state).toBe('completed');
    const { body: described } = await call('GET', `/v1/models/${modelId}`, ml);
    expect(described.versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    for (const id of victims) gone.add(id);
    await replayVersion(3);
  }, 600_000);

  it('a missing checkpoint fails its shard naming it, on whichever worker takes it, nothing is published; put back, the version is published', async () => {
    // A sample in slice 1 of shard 2: its forget resumes that shard from the checkpoint after slice 0, which is
    // gone from the store (deleted by hand, or lost with a restore that missed it); and one of shard 1 (two tasks).
    const shard = 2;
    const victims = [(await sliceOf(2, 1))[1], (await sliceOf(1, 1))[1]];
    const [version] = (await db.query(`SELECT engine_state FROM model_versions WHERE model_id = $1 AND version = 3`, [modelId])).rows;
    const checkpoint: string = version.engine_state.shards[shard].slices[0].checkpoint;
    const [artifact] = (await db.query(`SELECT sha256, size, chunks FROM artifacts WHERE kind = 'checkpoint' AND address = $1`, [checkpoint])).rows;
    const chunks = (await db.query(`SELECT seq, data FROM artifact_chunks WHERE kind = 'checkpoint' AND address = $1 ORDER BY seq`, [checkpoint])).rows;
    expect(chunks.length).toBeGreaterThan(0);
    await db.query(`DELETE FROM artifacts WHERE kind = 'checkpoint' AND address = $1`, [checkpoint]); // its chunks go with it
    expect((await db.query(`SELECT count(*)::int AS n FROM artifact_chunks WHERE kind = 'checkpoint' AND address = $1`, [checkpoint])).rows[0].n).toBe(0);

    const request = await forget(victims);
    const failing = await waitFor(
      async () => (await call('GET', `/v1/jobs/${request.jobId}`, ml)).body,
      (j) => (j.tasks ?? []).some((t: TaskView) => t.shard === shard && t.attempts >= 3),
      300_000,
    );
    const task = (failing.tasks as TaskView[]).find((t) => t.shard === shard)!;
    expect(task.error).toContain(`checkpoint ${checkpoint} is not in the store`);
    expect(`${logs.alpha}\n${logs.beta}`).toContain(`shard ${shard} of model ${modelId} version 4 will be retried: checkpoint ${checkpoint} is not in the store`);
    await expectUnpublished(4);

    // Put back: the next attempt succeeds, and the version is the one a replay reproduces.
    await db.query('BEGIN');
    await db.query(`INSERT INTO artifacts (kind, address, sha256, size, chunks) VALUES ('checkpoint', $1, $2, $3, $4)`, [checkpoint, artifact.sha256, artifact.size, artifact.chunks]);
    for (const row of chunks) await db.query(`INSERT INTO artifact_chunks (kind, address, seq, data) VALUES ('checkpoint', $1, $2, $3)`, [checkpoint, row.seq, row.data]);
    await db.query('COMMIT');
    const pass = await jobOf(request.jobId);
    expect(pass.state).toBe('completed');
    for (const id of victims) gone.add(id);
    await replayVersion(4);
  }, 600_000);

  it('a worker whose artifact store is out of reach hands back what it took, uncounted, and another worker does it; nothing half-written is published', async () => {
    // A third worker whose link to the artifact database is cut (ARTIFACT_DATABASE_URL through a link that drops
    // every connection); the two others are paused, so that it is the one to take the pass or its shard tasks.
    cutLink = await startCutLink();
    const dir = mkdtempSync(join(tmpdir(), 'lethe-apart-gamma-'));
    dirs.push(dir);
    const artifactsUrl = new URL(databaseUrl);
    artifactsUrl.port = String(cutLink.port);
    const gamma = await startWorker('gamma', databaseUrl, dir, (text) => (logs.gamma += text), { ARTIFACT_DATABASE_URL: artifactsUrl.toString() });
    workers.push(gamma);
    const [alpha, beta] = workers;
    signalGroup(alpha, 'SIGSTOP');
    signalGroup(beta, 'SIGSTOP');
    let paused = true;
    try {
      const victims = [(await sliceOf(3, 1))[1], (await sliceOf(0, 0))[1]];
      const request = await forget(victims);
      // It tried, found the store out of reach, and stopped taking work for a while (JOB_LOST_AFTER_SECONDS).
      await waitFor(async () => logs.gamma, (text) => text.includes('takes no job for 6 s: the artifact store'), 300_000);
      expect(logs.gamma).toContain(`the artifact store PostgreSQL 127.0.0.1:${cutLink.port}/lethe_apart cannot be reached`);
      await expectUnpublished(5);
      signalGroup(alpha, 'SIGCONT');
      signalGroup(beta, 'SIGCONT');
      paused = false;

      const pass = await jobOf(request.jobId);
      expect(pass.state).toBe('completed');
      // Every shard was trained by a worker that reaches the store; none of gamma's attempts counted against a task.
      expect(pass.tasks.length).toBeGreaterThanOrEqual(2);
      for (const task of pass.tasks as TaskView[]) {
        expect(task).toMatchObject({ version: 5, state: 'completed', worker: expect.stringMatching(/^(alpha|beta):/) });
        expect(task.attempts).toBe(1);
      }
      expect(logs.gamma).not.toMatch(/version 5 trained from slice/);
      for (const id of victims) gone.add(id);
      await replayVersion(5);
    } finally {
      if (paused) for (const child of [alpha, beta]) signalGroup(child, 'SIGCONT');
      stopGroup(gamma);
    }
  }, 600_000);
});
