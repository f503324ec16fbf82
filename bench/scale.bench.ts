// Shard tasks over worker processes: a SISA training (S shards) and one forget request whose samples lie in
// several shards, through the service as `npm start` runs it with SERVICE_WORKER=off (a child process on a
// throwaway PostgreSQL, anchoring off) and 1, 2 or 4 `npm run worker` processes sharing only its database
// (artifacts and keys in PostgreSQL, each worker with a DATA_DIR of its own). The baseline, measured in the same
// run: one worker with SHARD_TASKS=off, which trains every shard itself, one after another, as before shard
// tasks. Every run trains the same samples with the same config, so every run must publish the same bytes (checked).
//   npm run bench -- scale [--workers 1,2,4] [--shards 8] [--per-digit 300] [--epochs 4] [--forget 8]   (--help lists the flags)
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnist } from '@lethe/unlearning';
import { findFreePort } from '@lethe/postgres';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { startBenchPostgres } from './lib/bench-postgres';
import { createDatabase } from './lib/bulk-load';
import { Client, startService, startWorker, stopService, waitUntil } from './lib/service';
import { printTable } from './lib/table';

const flags = defineFlags({
  workers: { type: 'integers', min: 1, default: [1, 2, 4], help: 'worker processes of each fan-out run' },
  shards: { type: 'integer', min: 2, default: 8, help: 'SISA shards (S)' },
  perDigit: { type: 'integer', min: 20, default: 300, help: "digits of each class taken from the mnist package's 10,000 (its first ones)" },
  epochs: { type: 'integer', min: 1, default: 4, help: 'SISA epochs' },
  forget: { type: 'integer', min: 1, default: 8, help: 'samples in the forget request, spread over the dataset' },
});

interface Outcome {
  mode: string;
  workers: number;
  trainSeconds: number;
  forgetSeconds: number;
  trainTasks: number;
  forgetTasks: number;
  workersUsed: number;
  onnxSha256: string[];
  load: string;
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' / ');

async function runOnce(
  serverUrl: string,
  mode: string,
  workers: number,
  shardTasks: boolean,
  options: BenchOptions<typeof flags>,
  samples: { externalId: string; features: number[]; label: number }[],
): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'lethe-bench-scale-'));
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  try {
    const port = await findFreePort();
    const adminKey = randomBytes(24).toString('hex');
    const env = {
      ...process.env,
      DATABASE_URL: await createDatabase(serverUrl, `bench_scale_${mode.replace(/\W+/g, '_')}`),
      LETHE_MASTER_KEY: randomBytes(32).toString('hex'),
      ANCHORING: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      JOB_POLL_SECONDS: '1',
      SHARD_TASKS: shardTasks ? 'on' : 'off',
    };
    children.push(
      (await startService({ ...env, DATA_DIR: join(dir, 'service'), PORT: String(port), SERVICE_WORKER: 'off', LETHE_ADMIN_KEY: adminKey, LOG_LEVEL: 'error' }, port)).child,
    );
    for (let i = 0; i < workers; i++) children.push(await startWorker({ ...env, DATA_DIR: join(dir, `worker-${i + 1}`), WORKER_NAME: `w${i + 1}` }));
    const base = `http://127.0.0.1:${port}`;
    const admin = new Client(base, adminKey);
    const ml = new Client(base, (await admin.ok('POST', '/v1/keys', { role: 'ml', name: 'bench' })).key);
    const dataset = await ml.ok('POST', '/v1/datasets', { name: 'mnist-part', features: 784, classes: 10 });
    await ml.ndjson(`/v1/datasets/${dataset.id}/samples`, samples.map((s) => JSON.stringify(s)));

    const t0 = performance.now();
    const { modelId, jobId } = await ml.ok('POST', '/v1/models', {
      datasetId: dataset.id,
      method: 'sisa',
      shards: options.shards,
      slices: 2,
      architecture: { type: 'mlp', hidden: [32] },
      epochs: options.epochs,
      batchSize: 32,
      learningRate: 0.05,
      seed: 'bench-scale',
    });
    const trained = await waitUntil(() => ml.ok('GET', `/v1/jobs/${jobId}`), (j) => j.state === 'completed' || j.state === 'failed', 3_600_000, 'training', 200);
    const trainSeconds = (performance.now() - t0) / 1000;
    if (trained.state !== 'completed') throw new Error(`${mode}: training ${jobId} ${trained.state}: ${trained.error}`);

    const step = Math.floor(samples.length / options.forget);
    const t1 = performance.now();
    const filed = await ml.ok('POST', '/v1/forget-requests', {
      datasetId: dataset.id,
      externalIds: Array.from({ length: options.forget }, (_, i) => samples[i * step + 3].externalId),
      reason: 'bench',
    });
    const done = await waitUntil(() => ml.ok('GET', `/v1/forget-requests/${filed.id}`), (r) => r.state === 'completed' || r.state === 'failed', 3_600_000, 'the forget', 200);
    const forgetSeconds = (performance.now() - t1) / 1000;
    if (done.state !== 'completed' || done.modelVersions.length !== 1) throw new Error(`${mode}: forget request ${filed.id} ended ${JSON.stringify(done).slice(0, 500)}`);
    const pass = await ml.ok('GET', `/v1/jobs/${done.jobId}`);
    const model = await ml.ok('GET', `/v1/models/${modelId}`);
    const tasks = [...(trained.tasks ?? []), ...(pass.tasks ?? [])] as { worker: string | null }[];
    return {
      mode,
      workers,
      trainSeconds,
      forgetSeconds,
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
      `data: ${samples.length} digits of the mnist package (not MNIST's 70,000), SISA S=${options.shards}, 2 slices, mlp [32], ${options.epochs} epochs\n`,
  );
  const postgres = await startBenchPostgres();
  const outcomes: Outcome[] = [];
  try {
    outcomes.push(await runOnce(postgres.serverUrl, 'baseline', 1, false, options, samples));
    for (const n of options.workers) outcomes.push(await runOnce(postgres.serverUrl, `fan-out ${n}`, n, true, options, samples));
  } finally {
    await postgres.stop();
  }
  const [baseline] = outcomes;
  printTable(
    `Shard tasks over worker processes on one PostgreSQL (${cpus().length} cores): SISA training and one forget of ${options.forget} samples, seconds from the request to completed`,
    ['run', 'workers', 'train s', 'speed-up', 'forget s', 'speed-up', 'shard tasks (train / forget)', 'workers that trained', 'load after (1/5/15)'],
    outcomes.map((o) => [
      o.mode === 'baseline' ? 'baseline: SHARD_TASKS=off, one worker trains every shard' : 'SHARD_TASKS=on',
      String(o.workers),
      o.trainSeconds.toFixed(1),
      `${(baseline.trainSeconds / o.trainSeconds).toFixed(2)}x`,
      o.forgetSeconds.toFixed(1),
      `${(baseline.forgetSeconds / o.forgetSeconds).toFixed(2)}x`,
      `${o.trainTasks} / ${o.forgetTasks}`,
      String(o.workersUsed),
      o.load,
    ]),
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
