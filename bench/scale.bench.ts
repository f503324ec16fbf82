// Shard tasks over worker processes: a SISA training (S shards) and one forget request whose samples lie in
// several shards, through the service as `npm start` runs it with SERVICE_WORKER=off (a child process on a
// throwaway PostgreSQL, anchoring off) and 1, 2 or 4 `npm run worker` processes sharing only its database
// (artifacts and keys in PostgreSQL, each worker with a DATA_DIR of its own). The baseline, measured in the same
// run: one worker with SHARD_TASKS=off, which trains every shard itself, one after another, as before shard
// tasks. Every run trains the same samples with the same config, so every run must publish the same bytes (checked).
//   npm run bench -- scale [--workers 1,2,4] [--shards 8] [--per-digit 300] [--epochs 150] [--hidden 256] [--forget 8]   (--help lists the flags)
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { loadMnist } from '@lethe/unlearning';
import { findFreePort } from '@lethe/postgres';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { startBenchPostgres } from './lib/bench-postgres';
import { createDatabase } from './lib/bulk-load';
import { Client, startService, startWorker, stopService, waitUntil } from './lib/service';
import { machineCpu, processTreeCpuSeconds } from './lib/proc-cpu';
import { printTable } from './lib/table';

const flags = defineFlags({
  workers: { type: 'integers', min: 1, default: [1, 2, 4], help: 'worker processes of each fan-out run' },
  shards: { type: 'integer', min: 2, default: 8, help: 'SISA shards (S)' },
  perDigit: { type: 'integer', min: 20, default: 300, help: "digits of each class taken from the mnist package's 10,000 (its first ones)" },
  // 150 epochs and a hidden layer of 256: a shard's training is meant to be seconds of CPU (measured: 0.06-0.12 s with
  // [32] at 2-24 epochs, 0.32 s with [256] at 24), so that the bench measures training spread over workers rather than
  // the fixed cost of a job.
  epochs: { type: 'integer', min: 1, default: 150, help: 'SISA epochs' },
  hidden: { type: 'integer', min: 1, default: 256, help: 'units of the mlp hidden layer' },
  forget: { type: 'integer', min: 1, default: 8, help: 'samples in the forget request, spread over the dataset' },
});

/** What the shard tasks of a job say about themselves (job_tasks: seconds, and the worker's phases in result.timings). */
interface TaskFigures {
  tasks: number;
  /** Mean wall seconds of a task, claim to completion. */
  wall: number;
  /** Mean seconds of the optimizer steps (the engine's train phase): the work a task is for. */
  train: number;
  /** Mean CPU seconds of the optimizer steps in the worker (the train phase's): with `train`, whether a slower step waited or computed. */
  trainCpu: number;
  /** Mean CPU seconds of a task in its worker. */
  cpu: number;
  /** Mean seconds by phase. */
  phases: Record<string, number>;
  /** Mean seconds a worker took between completing a task and claiming its next one (while tasks were queued). */
  pickup: number;
}

interface Outcome {
  mode: string;
  workers: number;
  trainSeconds: number;
  forgetSeconds: number;
  /** CPU seconds of the worker processes (user + system, from /proc) during the training and during the forget. */
  trainCpu: number;
  forgetCpu: number;
  trainFigures: TaskFigures | null;
  /** The training job's phases in the worker that published it (job result timings), seconds by phase. */
  trainPhases: Record<string, number>;
  /** The same phases' CPU seconds in that worker. */
  trainPhasesCpu: Record<string, number>;
  /** CPU seconds during the training of PostgreSQL (its postmaster and backends), of the service, and of the whole machine (busy, and stolen by the hypervisor). */
  trainCpuElsewhere: { postgres: number; service: number; machine: number; steal: number };
  /** The forget pass's phases in its worker (job result timings), seconds by phase. */
  forgetPhases: Record<string, number>;
  trainTasks: number;
  forgetTasks: number;
  workersUsed: number;
  onnxSha256: string[];
  load: string;
}

/**
 * How often the bench reads a job or a request while it waits for it. The figures do not wait for the read: they end
 * at the row's completion (its updated_at in PostgreSQL, on this machine's clock), so a slow poll costs no precision
 * and takes little CPU from the workers.
 */
const POLL_MS = 250;

/** Seconds from `start` (Date.now() before the request) to when the row's state became completed (updated_at). */
async function secondsToRow(databaseUrl: string, table: 'jobs' | 'forget_requests', id: string, start: number): Promise<number> {
  const db = new PgClient({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ ms: number }>(`SELECT extract(epoch FROM updated_at)::float8 * 1000 AS ms FROM ${table} WHERE id = $1`, [id]);
    return (rows[0].ms - start) / 1000;
  } finally {
    await db.end();
  }
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' / ');

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux). */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

const workersCpu = (workers: ChildProcess[]) => workers.reduce((sum, w) => sum + cpuSecondsOf(w.pid!), 0);

/** The shard tasks of a job as their rows have them; null when it sent none. */
async function taskFigures(databaseUrl: string, jobId: string): Promise<TaskFigures | null> {
  const db = new PgClient({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{
      seconds: number;
      timings: { seconds: Record<string, number>; cpuSeconds: Record<string, number> } | null;
      worker: string;
      started: number;
      ended: number;
    }>(
      `SELECT seconds, result->'timings' AS timings, worker_id AS worker, extract(epoch FROM started_at)::float8 AS started, extract(epoch FROM updated_at)::float8 AS ended
         FROM job_tasks WHERE job_id = $1 AND state = 'completed' AND superseded_at IS NULL ORDER BY started_at`,
      [jobId],
    );
    if (rows.length === 0) return null;
    const mean = (f: (r: (typeof rows)[number]) => number) => rows.reduce((sum, r) => sum + f(r), 0) / rows.length;
    const phases: Record<string, number> = {};
    for (const r of rows) for (const [phase, s] of Object.entries(r.timings?.seconds ?? {})) phases[phase] = (phases[phase] ?? 0) + s / rows.length;
    // A worker's next task was queued from the start (every task is sent at once): the time between is its pickup.
    const gaps: number[] = [];
    const lastEnd = new Map<string, number>();
    for (const r of rows) {
      const end = lastEnd.get(r.worker);
      if (end !== undefined) gaps.push(r.started - end);
      lastEnd.set(r.worker, r.ended);
    }
    return {
      pickup: gaps.length === 0 ? 0 : gaps.reduce((a, b) => a + b, 0) / gaps.length,
      tasks: rows.length,
      wall: mean((r) => r.seconds),
      train: mean((r) => r.timings?.seconds.train ?? 0),
      trainCpu: mean((r) => r.timings?.cpuSeconds.train ?? 0),
      cpu: mean((r) => Object.values(r.timings?.cpuSeconds ?? {}).reduce((a, b) => a + b, 0)),
      phases,
    };
  } finally {
    await db.end();
  }
}

async function runOnce(
  serverUrl: string,
  mode: string,
  workers: number,
  shardTasks: boolean,
  options: BenchOptions<typeof flags>,
  samples: { externalId: string; features: number[]; label: number }[],
  postgresPid: number | undefined,
): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'lethe-bench-scale-'));
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const workerProcesses: ChildProcess[] = [];
  try {
    const port = await findFreePort();
    const adminKey = randomBytes(24).toString('hex');
    const databaseUrl = await createDatabase(serverUrl, `bench_scale_${mode.replace(/\W+/g, '_')}`);
    const env = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      LETHE_MASTER_KEY: randomBytes(32).toString('hex'),
      ANCHORING: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      JOB_POLL_SECONDS: '1',
      SHARD_TASKS: shardTasks ? 'on' : 'off',
    };
    const service = (
      await startService({ ...env, DATA_DIR: join(dir, 'service'), PORT: String(port), SERVICE_WORKER: 'off', LETHE_ADMIN_KEY: adminKey, LOG_LEVEL: 'error' }, port)
    ).child;
    children.push(service);
    for (let i = 0; i < workers; i++) workerProcesses.push(await startWorker({ ...env, DATA_DIR: join(dir, `worker-${i + 1}`), WORKER_NAME: `w${i + 1}` }));
    children.push(...workerProcesses);
    const base = `http://127.0.0.1:${port}`;
    const admin = new Client(base, adminKey);
    const ml = new Client(base, (await admin.ok('POST', '/v1/keys', { role: 'ml', name: 'bench' })).key);
    const dataset = await ml.ok('POST', '/v1/datasets', { name: 'mnist-part', features: 784, classes: 10 });
    await ml.ndjson(`/v1/datasets/${dataset.id}/samples`, samples.map((s) => JSON.stringify(s)));

    const cpu0 = workersCpu(workerProcesses);
    const elsewhere0 = { postgres: processTreeCpuSeconds(postgresPid), service: cpuSecondsOf(service.pid!), ...machineCpu() };
    const t0 = Date.now();
    const { modelId, jobId } = await ml.ok('POST', '/v1/models', {
      datasetId: dataset.id,
      method: 'sisa',
      shards: options.shards,
      slices: 2,
      architecture: { type: 'mlp', hidden: [options.hidden] },
      epochs: options.epochs,
      batchSize: 32,
      learningRate: 0.05,
      seed: 'bench-scale',
    });
    const trained = await waitUntil(() => ml.ok('GET', `/v1/jobs/${jobId}`), (j) => j.state === 'completed' || j.state === 'failed', 3_600_000, 'training', POLL_MS);
    const trainSeconds = await secondsToRow(databaseUrl, 'jobs', jobId, t0);
    const trainCpu = workersCpu(workerProcesses) - cpu0;
    const machine = machineCpu();
    const trainCpuElsewhere = {
      postgres: processTreeCpuSeconds(postgresPid) - elsewhere0.postgres,
      service: cpuSecondsOf(service.pid!) - elsewhere0.service,
      machine: machine.busy - elsewhere0.busy,
      steal: machine.steal - elsewhere0.steal,
    };
    if (trained.state !== 'completed') throw new Error(`${mode}: training ${jobId} ${trained.state}: ${trained.error}`);

    const step = Math.floor(samples.length / options.forget);
    const cpu1 = workersCpu(workerProcesses);
    const t1 = Date.now();
    const filed = await ml.ok('POST', '/v1/forget-requests', {
      datasetId: dataset.id,
      externalIds: Array.from({ length: options.forget }, (_, i) => samples[i * step + 3].externalId),
      reason: 'bench',
    });
    const done = await waitUntil(() => ml.ok('GET', `/v1/forget-requests/${filed.id}`), (r) => r.state === 'completed' || r.state === 'failed', 3_600_000, 'the forget', POLL_MS);
    const forgetSeconds = await secondsToRow(databaseUrl, 'forget_requests', filed.id, t1);
    const forgetCpu = workersCpu(workerProcesses) - cpu1;
    if (done.state !== 'completed' || done.modelVersions.length !== 1) throw new Error(`${mode}: forget request ${filed.id} ended ${JSON.stringify(done).slice(0, 500)}`);
    const pass = await ml.ok('GET', `/v1/jobs/${done.jobId}`);
    const model = await ml.ok('GET', `/v1/models/${modelId}`);
    const tasks = [...(trained.tasks ?? []), ...(pass.tasks ?? [])] as { worker: string | null }[];
    return {
      mode,
      workers,
      trainSeconds,
      forgetSeconds,
      trainCpu,
      forgetCpu,
      trainFigures: await taskFigures(databaseUrl, jobId),
      trainPhases: trained.result?.timings?.seconds ?? {},
      trainPhasesCpu: trained.result?.timings?.cpuSeconds ?? {},
      trainCpuElsewhere,
      forgetPhases: (await waitUntil(() => ml.ok('GET', `/v1/jobs/${done.jobId}`), (j) => j.state === 'completed' || j.state === 'failed', 600_000, 'the pass', POLL_MS)).result?.timings?.seconds ?? {},
      trainTasks: (trained.tasks ?? []).length,
      forgetTasks: (pass.tasks ?? []).length,
      workersUsed: tasks.length === 0 ? workers : new Set(tasks.map((t) => (t.worker ?? '').split(':')[0])).size, // no tasks: the one worker trained it all
      onnxSha256: model.versions.map((v: { onnxSha256: string }) => v.onnxSha256),
      load: load(),
    };
  } finally {
    for (const child of children.reverse()) await stopService(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const samples = loadMnist({ perDigit: options.perDigit }).map((s) => ({ externalId: s.externalId, features: [...s.features], label: s.label }));
  process.stdout.write(
    `\nmachine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; load average (1/5/15 min) at start ${load()}; ` +
      `data: ${samples.length} digits of the mnist package (not MNIST's 70,000), SISA S=${options.shards}, 2 slices, mlp [${options.hidden}], ${options.epochs} epochs; ` +
      `onnxruntime: 1 intra-op and 1 inter-op thread per session (the config's threads, default 1) in every worker, with 1 worker as with several\n`,
  );
  const postgres = await startBenchPostgres();
  const outcomes: Outcome[] = [];
  try {
    outcomes.push(await runOnce(postgres.serverUrl, 'baseline', 1, false, options, samples, postgres.pid));
    for (const n of options.workers) outcomes.push(await runOnce(postgres.serverUrl, `fan-out ${n}`, n, true, options, samples, postgres.pid));
  } finally {
    await postgres.stop();
  }
  const [baseline] = outcomes;
  printTable(
    `Shard tasks over worker processes on one PostgreSQL (${cpus().length} cores): SISA training and one forget of ${options.forget} samples, seconds from the request to completed (the row's updated_at)`,
    ['run', 'workers', 'train s', 'speed-up', 'forget s', 'speed-up', 'worker CPU s per shard (train)', 'worker CPU s (forget)', 'shard tasks (train / forget)', 'workers that trained', 'load after (1/5/15)'],
    outcomes.map((o) => [
      o.mode === 'baseline' ? 'baseline: SHARD_TASKS=off, one worker trains every shard' : 'SHARD_TASKS=on',
      String(o.workers),
      o.trainSeconds.toFixed(1),
      `${(baseline.trainSeconds / o.trainSeconds).toFixed(2)}x`,
      o.forgetSeconds.toFixed(1),
      `${(baseline.forgetSeconds / o.forgetSeconds).toFixed(2)}x`,
      (o.trainCpu / options.shards).toFixed(2),
      o.forgetCpu.toFixed(1),
      `${o.trainTasks} / ${o.forgetTasks}`,
      String(o.workersUsed),
      o.load,
    ]),
  );
  const fanned = outcomes.filter((o) => o.trainFigures !== null);
  if (fanned.length > 0) {
    const order = ['claim', 'seeds', 'samples', 'check', 'prepare', 'train', 'checkpointWrites'];
    const phases = [...new Set([...order, ...fanned.flatMap((o) => Object.keys(o.trainFigures!.phases))])].filter((p) => fanned.some((o) => p in o.trainFigures!.phases));
    printTable(
      'The training\'s shard tasks, per task (means): wall seconds from claim to completion, of which the optimizer steps (train), the rest a fixed cost per task; CPU seconds in the worker',
      ['run', 'workers', 'tasks', 'wall s', 'steps s', 'steps CPU s', 'fixed s (wall - steps)', 'pickup s (a worker, task to next)', 'CPU s', ...phases.map((p) => `${p} s`)],
      fanned.map((o) => {
        const f = o.trainFigures!;
        return [o.mode, String(o.workers), String(f.tasks), f.wall.toFixed(2), f.train.toFixed(2), f.trainCpu.toFixed(2), (f.wall - f.train).toFixed(2), f.pickup.toFixed(2), f.cpu.toFixed(2), ...phases.map((p) => (f.phases[p] ?? 0).toFixed(3))];
      }),
    );
    const one = fanned.find((o) => o.workers === 1);
    if (one) {
      process.stdout.write(
        `fixed cost of shard tasks against the baseline, per shard (1 worker, SHARD_TASKS=on minus off, same run): ` +
          `${((one.trainSeconds - baseline.trainSeconds) / options.shards).toFixed(2)} s wall, ${((one.trainCpu - baseline.trainCpu) / options.shards).toFixed(2)} s worker CPU\n`,
      );
    }
  }
  // Where the job that publishes spent its time: waiting for the shard tasks (tasks, the engine's phase) or not, the
  // rest serial around them (or, in the baseline, around its own training).
  const trainOrder = ['delivery', 'lock', 'samples', 'plan', 'tasks', 'train', 'members', 'export', 'evaluateAfter', 'checkpointWrites', 'manifest', 'ledger', 'save.onnx', 'save.row', 'save.samples', 'save.batches', 'save.commit'];
  const trainPhases = [...new Set([...trainOrder, ...outcomes.flatMap((o) => Object.keys(o.trainPhases))])].filter((p) => outcomes.some((o) => p in o.trainPhases));
  printTable(
    "The training's job in the worker that published it, seconds by phase (job result timings): delivery (sent to received), the dataset lock, reading the samples, planning, waiting for the shard tasks (tasks) or training them (train), then publishing; outside = all but tasks and train",
    ['run', 'workers', 'outside s', ...trainPhases.map((p) => `${p} s`)],
    outcomes.map((o) => {
      const outside = Object.entries(o.trainPhases).reduce((sum, [p, v]) => sum + (p === 'tasks' || p === 'train' ? 0 : v), 0);
      return [o.mode, String(o.workers), outside.toFixed(2), ...trainPhases.map((p) => (o.trainPhases[p] ?? 0).toFixed(3))];
    }),
  );
  printTable(
    "The same phases' CPU seconds in that worker (a phase whose CPU is far below its seconds waited: for PostgreSQL, another process, or a core)",
    ['run', 'workers', 'outside CPU s', ...trainPhases.map((p) => `${p} CPU s`)],
    outcomes.map((o) => {
      const outside = Object.entries(o.trainPhasesCpu).reduce((sum, [p, v]) => sum + (p === 'tasks' || p === 'train' ? 0 : v), 0);
      return [o.mode, String(o.workers), outside.toFixed(2), ...trainPhases.map((p) => (o.trainPhasesCpu[p] ?? 0).toFixed(3))];
    }),
  );
  printTable(
    `Where the machine's CPU went during each training (${cpus().length} cores: at most ${cpus().length} CPU seconds a second): the workers, PostgreSQL (postmaster and backends), the service, every other process (the machine's busy time less those), and the time the hypervisor stole`,
    ['run', 'workers', 'train s', 'core-seconds (cores x train s)', 'workers CPU s', 'PostgreSQL CPU s', 'service CPU s', 'others CPU s', 'stolen s'],
    outcomes.map((o) => {
      const e = o.trainCpuElsewhere;
      return [
        o.mode,
        String(o.workers),
        o.trainSeconds.toFixed(1),
        (cpus().length * o.trainSeconds).toFixed(1),
        o.trainCpu.toFixed(2),
        e.postgres.toFixed(2),
        e.service.toFixed(2),
        Math.max(0, e.machine - o.trainCpu - e.postgres - e.service).toFixed(2),
        e.steal.toFixed(2),
      ];
    }),
  );
  const forgetPhases = [...new Set(outcomes.flatMap((o) => Object.keys(o.forgetPhases)))].filter((p) => outcomes.some((o) => (o.forgetPhases[p] ?? 0) >= 0.005));
  printTable(
    "The forget's pass in its worker, seconds by phase (job result timings; engine.* the engine's, evidence.* measured after publication)",
    ['run', 'workers', ...forgetPhases.map((p) => `${p} s`)],
    outcomes.map((o) => [o.mode, String(o.workers), ...forgetPhases.map((p) => (o.forgetPhases[p] ?? 0).toFixed(3))]),
  );
  const differing = outcomes.filter((o) => o.onnxSha256.join() !== baseline.onnxSha256.join());
  if (differing.length > 0) throw new Error(`published bytes differ from the baseline's in: ${differing.map((o) => o.mode).join(', ')}`);
  process.stdout.write(`every run published the baseline's bytes (versions 1 and 2: ${baseline.onnxSha256.map((h) => h.slice(0, 12)).join(', ')})\n`);
}

export const bench: Bench<typeof flags> = {
  summary: 'SISA training and a forget with 1, 2 and 4 worker processes sharing only PostgreSQL, vs one worker training every shard',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/scale.bench.ts', bench);
