// Why a shard task is slower beside another: the scale bench's shard tasks (3,000 digits of the mnist package, S=8,
// 2 slices, mlp [256], 150 epochs, batch 32) trained by the engine alone (ShardTrainer, checkpoints in memory: no
// PostgreSQL, no service), in one child process, then in two child processes at once, each its own shards. Per task:
// wall seconds and the process's CPU seconds, and the machine's CPU meanwhile (/proc/stat: busy, stolen by the
// hypervisor). A task whose CPU seconds grow beside another computed more slowly (the two cores share a cache and
// memory, or the hypervisor's core); one whose wall grows and CPU does not waited for a core.
//   npm run bench -- contention [--per-digit 300] [--epochs 150] [--hidden 256] [--tasks 4]
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  MemoryCheckpointStore,
  ShardTrainer,
  detectRuntimeEnvelope,
  hashHyperparameters,
  loadMnist,
  normalizeConfig,
  planShards,
  resolveStoredSchedule,
  type Sample,
  type ShardTask,
} from '@lethe/unlearning';
import { createHash } from 'node:crypto';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { machineCpu } from './lib/proc-cpu';
import { printTable } from './lib/table';

const flags = defineFlags({
  perDigit: { type: 'integer', min: 20, default: 300, help: "digits of each class taken from the mnist package's 10,000 (its first ones)" },
  epochs: { type: 'integer', min: 1, default: 150, help: 'SISA epochs' },
  hidden: { type: 'integer', min: 1, default: 256, help: 'units of the mlp hidden layer' },
  tasks: { type: 'integer', min: 1, max: 8, default: 4, help: 'shard tasks each process trains (of the 8 shards)' },
});

const ROOT = join(__dirname, '..');

/** One task's figures in its process. */
interface TaskTiming {
  shard: number;
  wall: number;
  cpu: number;
}

/** The samples and tasks of the scale bench's training (its config; commitments made up: nothing is stored). */
function workload(options: { perDigit: number; epochs: number; hidden: number }): { samples: Sample[]; tasks: ShardTask[] } {
  const samples: Sample[] = loadMnist({ perDigit: options.perDigit }).map((s) => ({
    ...s,
    features: Float32Array.from(s.features),
    commitment: createHash('sha256').update(s.externalId).digest('hex'),
  }));
  const config = normalizeConfig(
    resolveStoredSchedule({
      method: 'sisa',
      model: 'mlp',
      hiddenLayers: [options.hidden],
      numFeatures: 784,
      numClasses: 10,
      shards: 8,
      slices: 2,
      epochs: options.epochs,
      batchSize: 32,
      learningRate: 0.05,
      seed: 'bench-scale',
    } as never) as never,
  );
  const plan = planShards(samples, config.seed, config.shards, config.slices);
  const envelope = detectRuntimeEnvelope();
  const tasks = plan.shards.map((shardPlan) => ({
    modelId: 'contention',
    version: 1,
    config,
    hyperparamsHash: hashHyperparameters(config),
    shard: shardPlan.shard,
    fromSlice: 0,
    kept: [],
    commitments: shardPlan.slices.map((slice) => slice.map((i) => samples[i].commitment)),
    envelope,
    phase: 'train' as const,
  }));
  return { samples, tasks };
}

/** The child: trains its shards one after another (its step sessions kept between them, as a worker's), prints their timings. */
async function child(options: { perDigit: number; epochs: number; hidden: number }, shards: number[]): Promise<void> {
  const { samples, tasks } = workload(options);
  const trainer = new ShardTrainer({ store: new MemoryCheckpointStore(), log: () => undefined });
  const timings: TaskTiming[] = [];
  try {
    for (const shard of shards) {
      const task = tasks[shard];
      const own = new Set(task.commitments.flat());
      const mine = samples.filter((s) => own.has(s.commitment));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await trainer.train(task, mine);
      const cpu = process.cpuUsage(cpu0);
      timings.push({ shard, wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 });
    }
  } finally {
    await trainer.release();
  }
  process.stdout.write(`${JSON.stringify(timings)}\n`);
}

/** Starts a child that trains `shards`; resolves with its timings. */
function runChild(options: BenchOptions<typeof flags>, shards: number[]): Promise<TaskTiming[]> {
  const args = ['-r', './scripts/register.js', 'bench/shard-contention.bench.ts', '--child', JSON.stringify({ perDigit: options.perDigit, epochs: options.epochs, hidden: options.hidden, shards })];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('[')) reject(new Error(`a contention child exited with ${code}: ${err}`));
      else resolve(JSON.parse(line) as TaskTiming[]);
    });
  });
}

interface Phase {
  run: string;
  timings: TaskTiming[];
  wall: number;
  busy: number;
  steal: number;
  load: string;
}

async function measure(run: string, start: () => Promise<TaskTiming[][]>): Promise<Phase> {
  const m0 = machineCpu();
  const t0 = performance.now();
  const timings = (await start()).flat();
  const m1 = machineCpu();
  return { run, timings, wall: (performance.now() - t0) / 1000, busy: m1.busy - m0.busy, steal: m1.steal - m0.steal, load: loadavg().map((l) => l.toFixed(1)).join(' / ') };
}

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const n = options.tasks;
  process.stdout.write(
    `\nmachine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; load average at start ${loadavg().map((l) => l.toFixed(1)).join(' / ')}; ` +
      `${options.perDigit * 10} digits of the mnist package (not MNIST's 70,000), S=8, 2 slices, mlp [${options.hidden}], ${options.epochs} epochs; ` +
      `onnxruntime 1 intra-op and 1 inter-op thread per session; each process trains ${n} shard(s), one after another\n`,
  );
  const first = Array.from({ length: n }, (_, i) => i);
  const second = Array.from({ length: n }, (_, i) => (i + n) % 8);
  // The same shards alone before and after the pair, so that a change of the machine's load shows.
  const phases = [
    await measure('alone (1 process)', async () => [await runChild(options, first)]),
    await measure('beside another (2 processes at once)', () => Promise.all([runChild(options, first), runChild(options, second)])),
    await measure('alone again (1 process)', async () => [await runChild(options, first)]),
  ];
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  printTable(
    "A shard task's training (the engine's, checkpoints in memory) alone and beside another process doing the same: per task, wall and CPU seconds of its process; the machine's CPU during the run",
    ['run', 'tasks', 'wall s per task', 'CPU s per task', 'CPU / wall', 'CPU s per task, shards of the first process', 'run wall s', 'machine busy CPU s', 'busy outside the tasks (others, and these processes starting)', 'stolen s', 'load after'],
    phases.map((p) => {
      const ownShards = p.timings.filter((t) => first.includes(t.shard));
      const ownCpu = mean(ownShards.map((t) => t.cpu));
      const cpu = p.timings.reduce((a, t) => a + t.cpu, 0);
      return [
        p.run,
        String(p.timings.length),
        mean(p.timings.map((t) => t.wall)).toFixed(2),
        mean(p.timings.map((t) => t.cpu)).toFixed(2),
        (mean(p.timings.map((t) => t.cpu)) / mean(p.timings.map((t) => t.wall))).toFixed(2),
        ownCpu.toFixed(2),
        p.wall.toFixed(1),
        p.busy.toFixed(1),
        Math.max(0, p.busy - cpu).toFixed(1),
        p.steal.toFixed(2),
        p.load,
      ];
    }),
  );
}

export const bench: Bench<typeof flags> = {
  summary: "a shard task's training alone and beside another process: CPU and wall seconds",
  flags,
  run,
};

if (require.main === module) {
  const at = process.argv.indexOf('--child');
  if (at >= 0) {
    const { shards, ...options } = JSON.parse(process.argv[at + 1]) as { perDigit: number; epochs: number; hidden: number; shards: number[] };
    child(options, shards).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  } else runBenchFile('bench/shard-contention.bench.ts', bench);
}
