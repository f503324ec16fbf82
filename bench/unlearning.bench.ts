// libs/unlearning: SISA vs full retraining on MNIST (S=10, R=5, MLP 784-128-10) and on a synthetic Purchase-like
// set, with every baseline measured in the same run: forget-serving time vs a full retrain serving the same
// request, ensemble vs monolithic accuracy, training GFLOP/s vs a bare ONNX MatMul of the same shapes,
// membership-inference AUC vs the retrained reference.
// Run: npm run bench -- unlearning [flags], or node -r ./scripts/register.js bench/unlearning.bench.ts [flags]
// Flags (--help lists them): --purchase-samples (default 200000, the full size; 0 skips), --epochs, --threads
// (onnxruntime intra-op threads, default 1: on this shared 2-core machine 2 threads spin against other work
// and ran slower), --quick (fewer repetitions), --store memory (checkpoints in memory instead of files),
// --sweep (only the MNIST settings table: accuracy vs forget cost for several batch sizes / learning rates / epochs).
// Times are wall-clock and this process's CPU time; on a shared machine the CPU-time ratios are the steadier.
// Both sides of the forget comparison serve a forget request through the same method on the same trained
// model: the evidence (before/after on 1000 retained, the forgotten and the test rows), the ONNX export, the
// manifest, checkpoint writes and the ledger events are the same work; only the training differs (the
// baseline retrains all S x R slices from scratch, retrainFromScratch). SISA trains each slice its share of the
// epochs (the paper's schedule, epochsPerSlice: [3, 3, 4, 3, 3] for 10 epochs at R=5); a slice-unit is one
// epoch over one slice's samples. A request retrains from a uniformly random slice: at S=10 R=5 with that
// schedule, SISA's slices alone allow 13.8x; the single requests are drawn evenly from the 5 slices so their
// mix is that average. They run in rounds of one per slice, each round followed by a baseline run (both sides
// see the same load). Requests served at once are bounded by the schedule too (a shard restarts at its
// earliest affected slice): 1.95x for 10 uniformly random requests, 1.01x for 100; the table prints that bound.
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CheckpointStore,
  FileCheckpointStore,
  ForgetOutcome,
  compactFeatures,
  configureHeapForTraining,
  ForgetRequest,
  LabeledExample,
  MemoryCheckpointStore,
  MemoryLedgerSink,
  Sample,
  TrainedModel,
  TrainingConfigInput,
  UnlearningMethod,
  countForwardMacs,
  createFullRetrainMethod,
  createSisaMethod,
  epochsOfSlices,
  initializeWeights,
  loadMnist,
  normalizeConfig,
  placeSample,
  splitTrainTest,
  StepRunner,
} from '@lethe/unlearning';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';

const flags = defineFlags({
  purchaseSamples: { type: 'integer', min: 0, default: 200_000, help: 'samples of the synthetic Purchase-like set (0 skips it)' },
  epochs: { type: 'integer', min: 1, help: 'epochs of both sides (default 10 on MNIST, 4 on Purchase-like)' },
  threads: { type: 'integer', min: 1, default: 1, help: 'onnxruntime intra-op threads' },
  quick: { type: 'boolean', help: 'fewer repetitions' },
  store: { type: 'choice', choices: ['file', 'memory'], default: 'file', help: 'where checkpoints go: files in a temp directory (as the service) or memory' },
  sweep: { type: 'boolean', help: 'only the MNIST settings sweep (accuracy vs forget cost)' },
});

type Row = string[];

/** Wall-clock and CPU seconds of this process (the machine is shared: CPU time is the steadier measure). */
export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ seconds: number; cpu: number; result: T }> {
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const result = await fn();
  const cpu = process.cpuUsage(cpuStart);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpu: (cpu.user + cpu.system) / 1e6, result };
}

/** A fixed xorshift sequence, so every run forgets the same samples. */
function pick<T>(items: readonly T[], count: number, seed: number): T[] {
  let x = seed >>> 0 || 1;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, items.length)) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    chosen.add((x >>> 0) % items.length);
  }
  return [...chosen].map((i) => items[i]);
}

/** Salted commitments, features held as the service holds them (float32 views of one matrix, compactFeatures). */
export function commit(examples: readonly LabeledExample[]): Sample[] {
  return compactFeatures(
    examples.map((e) => ({ ...e, commitment: createHash('sha256').update('bench-salt|').update(e.externalId).digest('hex') })),
  );
}

/**
 * Purchase-like (Shokri et al.'s Purchase-100 has 600 binary features, 100 classes): 10 seeded base patterns
 * (25% ones); each class copies one and redraws 4% of its bits; each sample flips 20% of its class's bits.
 */
export function makePurchaseLike(count: number, seed = 1): LabeledExample[] {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const classes = 100;
  const features = 600;
  const bases = Array.from({ length: 10 }, () => Array.from({ length: features }, () => (next() < 0.25 ? 1 : 0)));
  const prototypes = Array.from({ length: classes }, (_, c) => bases[c % 10].map((bit) => (next() < 0.04 ? (next() < 0.25 ? 1 : 0) : bit)));
  return Array.from({ length: count }, (_, i) => {
    const label = Math.floor(next() * classes);
    const row = prototypes[label].map((bit) => (next() < 0.2 ? 1 - bit : bit));
    return { externalId: `purchase-${i}`, features: row, label };
  });
}

/** Multiply-adds of one training step per sample: forward, weight gradients, and input gradients of layers after the first. */
function stepMacs(layers: number[]): number {
  let macs = 2 * countForwardMacs(layers);
  for (let i = 1; i + 1 < layers.length; i++) macs += layers[i] * layers[i + 1];
  return macs;
}

/** The same matrix products as one training step (forward, dW, dH), and nothing else, as one ONNX graph. */
async function createMatMulBaseline(layers: number[], batch: number, threads: number): Promise<(seconds: number) => Promise<number>> {
  const F = onnx.TensorProto.DataType.FLOAT;
  const inputs: onnx.IValueInfoProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  const vi = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const feeds: Record<string, ort.Tensor> = {};
  const outputs: onnx.IValueInfoProto[] = [];
  const add = (name: string, dims: number[]) => {
    inputs.push(vi(name, dims));
    feeds[name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01), dims);
  };
  for (let i = 0; i + 1 < layers.length; i++) {
    const [a, b] = [layers[i], layers[i + 1]];
    add(`h${i}`, [batch, a]);
    add(`w${i}`, [a, b]);
    add(`dz${i}`, [batch, b]);
    nodes.push({ opType: 'MatMul', input: [`h${i}`, `w${i}`], output: [`z${i}`] }); // forward
    nodes.push({ opType: 'Gemm', input: [`h${i}`, `dz${i}`], output: [`dw${i}`], attribute: [{ name: 'transA', type: 2, i: 1 }] }); // dW
    outputs.push(vi(`z${i}`, [batch, b]), vi(`dw${i}`, [a, b]));
    if (i > 0) {
      nodes.push({ opType: 'Gemm', input: [`dz${i}`, `w${i}`], output: [`dh${i}`], attribute: [{ name: 'transB', type: 2, i: 1 }] }); // dH
      outputs.push(vi(`dh${i}`, [batch, a]));
    }
  }
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ version: 17 }],
    graph: { name: 'matmul', node: nodes, input: inputs, output: outputs },
  }).finish();
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return (seconds) =>
    gflopsOver(seconds, batch * stepMacs(layers) * 2, async () => {
      await session.run(feeds);
      return 1;
    });
}

/** GFLOP/s of calling `run` (which returns how many steps of `flopsPerStep` it did) for `seconds`. */
async function gflopsOver(seconds: number, flopsPerStep: number, run: (stepsSoFar: number) => Promise<number>): Promise<number> {
  let steps = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    steps += await run(steps);
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return (steps * flopsPerStep) / elapsed / 1e9;
}

/** GFLOP/s of the one-graph training step alone, on real rows, same shapes and threads. */
async function createStepMeasure(
  layers: number[],
  batch: number,
  threads: number,
  rows: readonly LabeledExample[],
): Promise<(seconds: number) => Promise<number>> {
  const runner = await StepRunner.create(layers, 0.01, batch, { intraOpNumThreads: threads });
  const features = new Float32Array(rows.length * layers[0]);
  rows.forEach((r, i) => features.set(r.features, i * layers[0]));
  const labels = Int32Array.from(rows, (r) => r.label);
  let weights = initializeWeights(layers, 'bench');
  return (seconds) =>
    gflopsOver(seconds, batch * stepMacs(layers) * 2, async (steps) => {
      // 20 steps per call, as training runs them (runSteps: preallocated outputs).
      const batches = Array.from({ length: 20 }, (_, k) => {
        const offset = ((steps + k) * batch) % (rows.length - batch);
        return Array.from({ length: batch }, (_, i) => offset + i);
      });
      weights = await runner.runSteps(weights, features, labels, batches);
      return batches.length;
    });
}

/** Alternates the two measurements (the machine's load changes), returning the median of each. */
async function measureInterleaved(
  layers: number[],
  batch: number,
  threads: number,
  rows: readonly LabeledExample[],
  rounds: number,
): Promise<{ gemm: number; step: number }> {
  const gemm = await createMatMulBaseline(layers, batch, threads);
  const step = await createStepMeasure(layers, batch, threads, rows);
  const gemms: number[] = [];
  const steps: number[] = [];
  for (let round = 0; round < rounds; round++) {
    gemms.push(await gemm(0.5));
    steps.push(await step(0.5));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { gemm: median(gemms), step: median(steps) };
}

interface Scenario {
  name: string;
  train: Sample[];
  test: LabeledExample[];
  /** Held-out samples given to forget requests for the evidence (test accuracy, MIA). */
  evidenceTest: LabeledExample[];
  sisa: TrainingConfigInput;
  monolithic: TrainingConfigInput;
}

const f = (v: number, digits = 3) => v.toFixed(digits);
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Useful training FLOPs of a SISA/full model: per slice, its epochs x samples seen x 2 x step multiply-adds. */
function trainingFlops(model: TrainedModel, layers: number[]): number {
  const epochs = epochsOfSlices(model.config);
  let rows = 0;
  for (const shard of model.shards) {
    let seen = 0;
    for (const slice of shard.slices) {
      seen += slice.count;
      rows += epochs[slice.slice] * seen;
    }
  }
  return rows * stepMacs(layers) * 2;
}

/**
 * `perSlice` samples of every slice r (so the requests retrain from each slice equally often, as uniformly
 * random requests do on average), picked by a fixed xorshift sequence, none of them in `exclude`.
 */
function pickPerSlice(
  samples: readonly Sample[],
  config: TrainingConfigInput,
  perSlice: number,
  seed: number,
  exclude: ReadonlySet<string> = new Set(),
): string[] {
  const slices = config.slices ?? 1;
  const candidates = samples.filter((x) => !exclude.has(x.externalId));
  const sliceOf = candidates.map((x) => placeSample(String(config.seed), x.externalId, config.shards ?? 1, slices).slice);
  const ids: string[] = [];
  for (let r = 0; r < slices; r++)
    ids.push(
      ...pick(
        candidates.filter((_, i) => sliceOf[i] === r),
        perSlice,
        seed + r,
      ).map((x) => x.externalId),
    );
  return ids;
}

/**
 * The speed-up the slice schedule allows k uniformly random requests served at once: full retrain's slice-units
 * over the expected units of the shards they touch (a shard restarts at the earliest slice any of them is in;
 * P(earliest >= j) = (1 - j / SR)^k). For S=10, R=5, 10 epochs (SISA's schedule [3, 3, 4, 3, 3]): 13.8x for 1
 * request, 1.95x for 10, 1.01x for 100.
 */
function expectedBound(config: TrainingConfigInput, k: number): number {
  const shards = config.shards ?? 1;
  const slices = config.slices ?? 1;
  const cells = shards * slices;
  let units = 0;
  for (let j = 0; j < slices; j++) units += ((1 - j / cells) ** k - (1 - (j + 1) / cells) ** k) * sliceUnits(config, j);
  return sliceUnits(config, 0) / units;
}

/**
 * Slice-units a forget retrains from slice r (slice k costs its epochs x (k + 1) units: it trains on slices
 * 0..k), and a full retrain's (from slice 0).
 */
function sliceUnits(config: TrainingConfigInput, fromSlice: number): number {
  const epochs = epochsOfSlices(normalizeConfig(config));
  let units = 0;
  for (let k = fromSlice; k < epochs.length; k++) units += epochs[k] * (k + 1);
  return units;
}

function describeConfig(c: TrainingConfigInput): string {
  const layers = [c.numFeatures, ...(c.hiddenLayers ?? []), c.numClasses].join('-');
  const schedule = c.method === 'sisa' ? ` (per slice ${epochsOfSlices(normalizeConfig(c)).join(', ')})` : '';
  return `${c.method} S=${c.shards ?? 1} R=${c.slices ?? 1}, MLP ${layers}, ${c.epochs} epochs${schedule}, batch ${c.batchSize}, lr ${
    c.learningRate
  }, weight decay ${c.weightDecay ?? 0}, ${c.aggregation ?? 'mean'} aggregation, ${c.threads ?? 1} thread(s), seed ${c.seed}`;
}

type StoreKind = 'file' | 'memory';

/** A checkpoint store of the kind asked for; file stores live in a temp directory removed at the end. */
function createStores(kind: StoreKind): { create: () => CheckpointStore; cleanup: () => void } {
  const dirs: string[] = [];
  return {
    create: () => {
      if (kind === 'memory') return new MemoryCheckpointStore();
      const dir = mkdtempSync(path.join(tmpdir(), 'lethe-bench-'));
      dirs.push(dir);
      return new FileCheckpointStore(dir);
    },
    cleanup: () => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })),
  };
}

type Timed = { seconds: number; cpu: number };
type ForgetRun = Timed & { phases: { [phase: string]: number }; fromSlices: number[]; sha: string };

const PHASES = [
  'prepare',
  'evaluateBefore',
  'plan',
  'train',
  'members',
  'export',
  'evaluateAfter',
  'checkpointWrites',
  'manifest',
  'ledger',
];

async function timeForget(
  method: UnlearningMethod,
  model: TrainedModel,
  request: ForgetRequest,
): Promise<ForgetRun & { outcome: ForgetOutcome }> {
  const { seconds, cpu, result } = await timeAsync(() => method.forget(model, request));
  return {
    seconds,
    cpu,
    phases: result.timings.phases,
    fromSlices: result.affected.map((a) => a.fromSlice),
    sha: result.model.onnxSha256,
    outcome: result,
  };
}

const per = (t: Timed, k: number): Timed => ({ seconds: t.seconds / k, cpu: t.cpu / k });
const avg = (xs: Timed[]): Timed => ({ seconds: mean(xs.map((x) => x.seconds)), cpu: mean(xs.map((x) => x.cpu)) });
const show = (t: Timed) => `${f(t.seconds)} s (cpu ${f(t.cpu)} s)`;
const faster = (base: Timed, t: Timed) => `${f(base.seconds / t.seconds, 1)}x wall, ${f(base.cpu / t.cpu, 1)}x cpu`;

interface ScenarioResult {
  timing: Row[];
  phases: Row[];
  quality: Row[];
  throughput: Row[];
}

async function benchScenario(s: Scenario, quick: boolean, threads: number, storeKind: StoreKind): Promise<ScenarioResult> {
  const stores = createStores(storeKind);
  let trainPhaseEnded = 0n;
  const onProgress = (p: { phase: string }) => {
    if (p.phase === 'publish' && trainPhaseEnded === 0n) trainPhaseEnded = process.hrtime.bigint();
  };
  const runtime = { intraOpNumThreads: threads };
  const store = stores.create();
  const sisa = createSisaMethod({ store, ledger: new MemoryLedgerSink(), runtime, onProgress });
  const monolithic = createFullRetrainMethod({ store: stores.create(), ledger: new MemoryLedgerSink(), runtime });
  try {
    const trainStart = process.hrtime.bigint();
    const trainedSisa = await timeAsync(() => sisa.train({ modelId: `${s.name}-sisa`, config: s.sisa, samples: s.train, testSet: s.test }));
    const trainSeconds = Number(trainPhaseEnded - trainStart) / 1e9;
    const trainedMono = await timeAsync(() =>
      monolithic.train({ modelId: `${s.name}-mono`, config: s.monolithic, samples: s.train, testSet: s.test }),
    );
    const model: TrainedModel = trainedSisa.result;
    const request = (ids: string[], extra: Partial<ForgetRequest> = {}): ForgetRequest => ({
      requestIds: ids.map((id) => `r-${id}`),
      externalIds: ids,
      testSet: s.evidenceTest,
      ...extra,
    });

    // One request at a time, each from the trained model, 1 or 2 per slice. The baseline serves other single
    // requests (so neither side finds the other's new shard model in the caches) by retraining all S x R
    // slices from scratch, with the same evidence, publishing and ledger events.
    // Rounds of one request per slice, each followed by a baseline run: the machine's load drifts over the
    // minutes this takes, and both sides should see the same drift.
    const perSlice = quick ? 1 : 2;
    const picked = pickPerSlice(s.train, s.sisa, perSlice, 7); // grouped by slice
    const rounds = Array.from({ length: perSlice }, (_, round) => picked.filter((_, i) => i % perSlice === round));
    const singles = rounds.flat();
    const baselineIds = pickPerSlice(s.train, s.sisa, 1, 101, new Set(singles)).slice(0, perSlice);
    const singleRuns: ForgetRun[] = [];
    const baselineRuns: ForgetRun[] = [];
    for (const [round, ids] of rounds.entries()) {
      for (const id of ids) singleRuns.push(await timeForget(sisa, model, request([id])));
      baselineRuns.push(await timeForget(sisa, model, request([baselineIds[round]], { retrainFromScratch: true })));
    }
    const exactSingle = (await sisa.forget(model, request([baselineIds[0]]))).model.onnxSha256 === baselineRuns[0].sha;
    // The same single requests on a method with nothing cached (apps/api builds one per unlearning pass).
    const coldRuns: ForgetRun[] = [];
    for (const id of singles.slice(0, quick ? 1 : 3)) {
      const cold = createSisaMethod({ store, ledger: new MemoryLedgerSink(), runtime });
      coldRuns.push(await timeForget(cold, model, request([id])));
      await cold.release();
    }

    const ten = pick(s.train, 10, 11).map((x) => x.externalId);
    const hundreds = pick(s.train, 200, 13).map((x) => x.externalId);
    const [hundred, otherHundred] = [hundreds.slice(0, 100), hundreds.slice(100)];
    const forgetTen = await timeForget(sisa, model, request(ten));
    const forgetHundred = await timeForget(sisa, model, request(hundred));
    const baselineHundred = await timeForget(sisa, model, request(otherHundred, { retrainFromScratch: true }));
    // The other 100 by SISA with the retrained reference (trained from scratch, evaluated from its ONNX file).
    const withReference = await sisa.forget(model, request(otherHundred, { compareWithRetrain: true }));
    const monoForget = await timeAsync(() => monolithic.forget(trainedMono.result, request([singles[0]])));

    const full = avg(baselineRuns);
    const single = avg(singleRuns);
    const cold = avg(coldRuns);
    const fullUnits = (s.sisa.shards ?? 1) * sliceUnits(s.sisa, 0);
    const bound = fullUnits / mean(singleRuns.map((r) => sliceUnits(s.sisa, r.fromSlices[0])));
    const boundOf = (run: ForgetRun) => fullUnits / run.fromSlices.reduce((units, from) => units + sliceUnits(s.sisa, from), 0);
    const bounds = (run: ForgetRun, k: number) =>
      `slice schedule allows ${f(boundOf(run), 2)}x for these, ${f(
        expectedBound(s.sisa, k),
        2,
      )}x expected for ${k} uniformly random requests`;
    const timing: Row[] = [
      [
        s.name,
        'SISA train from scratch (all shards)',
        show(trainedSisa),
        '',
        `training phase ${f(trainSeconds)} s wall, then publish + evaluation`,
      ],
      [
        s.name,
        'full retrain serving 1 request (baseline)',
        show(full),
        '1.00x',
        `all ${fullUnits} slice-units from scratch + the same evidence, ONNX export, manifest, ledger; ${
          baselineRuns.length
        } runs: ${baselineRuns.map(show).join(', ')}`,
      ],
      [
        s.name,
        'SISA forget 1 request, end to end',
        show(single),
        faster(full, single),
        `mean of ${singleRuns.length}, from slices ${singleRuns.map((r) => r.fromSlices[0]).join(',')}; slice schedule alone allows ${f(
          bound,
          1,
        )}x`,
      ],
      [
        s.name,
        '  same, nothing cached (fresh method)',
        show(cold),
        faster(full, cold),
        `mean of ${coldRuns.length}: old model's members loaded from the store and evaluated whole`,
      ],
      [
        s.name,
        'SISA forget 10 requests at once',
        show(forgetTen),
        faster(full, forgetTen),
        `${forgetTen.fromSlices.length} of ${s.sisa.shards} shards retrained, from slices ${forgetTen.fromSlices.join(',')}; ${bounds(
          forgetTen,
          10,
        )}`,
      ],
      [
        s.name,
        'SISA forget 100 requests at once',
        show(forgetHundred),
        `${faster(baselineHundred, forgetHundred)} vs ${show(baselineHundred)}`,
        `${forgetHundred.fromSlices.length} of ${s.sisa.shards} shards retrained, from slices ${forgetHundred.fromSlices.join(
          ',',
        )}; ${bounds(forgetHundred, 100)}; baseline: other 100 from scratch`,
      ],
      [
        s.name,
        '  per request, 10 / 100 at once (amortized)',
        `${show(per(forgetTen, 10))} / ${show(per(forgetHundred, 100))}`,
        `${faster(full, per(forgetTen, 10))} / ${faster(full, per(forgetHundred, 100))}`,
        'one pass divided by its requests, against a full retrain serving 1 request (a retrain per request)',
      ],
      [s.name, 'monolithic train', show(trainedMono), '', describeConfig(s.monolithic)],
      [s.name, 'monolithic forget 1 (= retrain)', show(monoForget), `${f(monoForget.cpu / single.cpu, 1)}x SISA's cpu time`, ''],
    ];
    const phaseRow = (label: string, runs: ForgetRun[]) => [
      s.name,
      label,
      ...PHASES.map((p) => f(mean(runs.map((r) => r.phases[p] ?? 0)))),
      f(mean(runs.map((r) => r.seconds))),
    ];
    const phases: Row[] = [
      phaseRow('SISA forget 1', singleRuns),
      phaseRow('  nothing cached', coldRuns),
      phaseRow('full retrain serving 1 (baseline)', baselineRuns),
    ];

    const ev = withReference.evidence;
    const exactHundred = withReference.model.onnxSha256 === baselineHundred.sha && ev.reference?.onnxSha256 === baselineHundred.sha;
    const monoAcc = Number(trainedMono.result.metrics.testAccuracy);
    const sisaAcc = Number(model.metrics.testAccuracy);
    const quality: Row[] = [
      [
        s.name,
        'test accuracy: SISA ensemble vs monolithic',
        pct(sisaAcc),
        pct(monoAcc),
        `${f(100 * (monoAcc - sisaAcc), 2)} points behind (${s.test.length} test rows)`,
      ],
      [
        s.name,
        'MIA AUC forgotten(100) vs test: after unlearning vs retrained reference',
        f(ev.after.membershipAuc ?? NaN, 4),
        f(ev.reference?.membershipAuc ?? NaN, 4),
        `before: ${f(ev.before.membershipAuc ?? NaN, 4)}; |diff| ${f(
          Math.abs((ev.after.membershipAuc ?? 0) - (ev.reference?.membershipAuc ?? 0)),
          4,
        )}; reference evaluated from its own ONNX file`,
      ],
      [
        s.name,
        'forget-set accuracy: before / after',
        pct(ev.before.forgetAccuracy),
        pct(ev.after.forgetAccuracy),
        `retain (${ev.retainEvaluated} evaluated) ${pct(ev.after.retainAccuracy)}, test ${pct(ev.after.testAccuracy ?? NaN)}`,
      ],
      [
        s.name,
        'unlearned ONNX SHA-256 == from-scratch retrain',
        exactSingle && exactHundred ? 'identical' : 'DIFFERENT',
        baselineHundred.sha.slice(0, 16),
        '1 and 100 forgotten; also the reference retrained inside the forget request',
      ],
    ];
    const layers = [s.sisa.numFeatures, ...(s.sisa.hiddenLayers ?? []), s.sisa.numClasses];
    const batch = s.sisa.batchSize;
    const measured = await measureInterleaved(layers, batch, threads, s.train, quick ? 3 : 7);
    const endToEnd = trainingFlops(model, layers) / trainSeconds / 1e9;
    const shape = `${layers.join('-')}, batch ${batch}`;
    const throughput: Row[] = [
      [s.name, `bare ONNX MatMul/Gemm of the step's shapes (baseline), ${shape}`, f(measured.gemm, 1), '100%'],
      [s.name, 'one-graph SGD step (forward, softmax CE, backward, update)', f(measured.step, 1), pct(measured.step / measured.gemm)],
      [
        s.name,
        'SISA training end to end (useful rows only; padding, hashing, checkpoints count as cost)',
        f(endToEnd, 1),
        pct(endToEnd / measured.gemm),
      ],
    ];
    return { timing, phases, quality, throughput };
  } finally {
    await sisa.release();
    await monolithic.release();
    stores.cleanup();
  }
}

/**
 * MNIST only: SISA (S=10, R=5) and the monolithic model with the same hyperparameters, for several settings:
 * accuracy against the cost of serving one request (5 requests, one per slice) and of the from-scratch baseline.
 */
async function sweepMnist(
  train: Sample[],
  test: LabeledExample[],
  threads: number,
  settings: Partial<TrainingConfigInput>[],
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const setting of settings) {
    const sisaConfig = { ...mnistConfig('sisa', threads, 10), ...setting } as TrainingConfigInput;
    const monoConfig = { ...mnistConfig('full-retrain', threads, 10), ...setting } as TrainingConfigInput;
    const runtime = { intraOpNumThreads: threads };
    const sisa = createSisaMethod({ store: new MemoryCheckpointStore(), ledger: new MemoryLedgerSink(), runtime });
    const mono = createFullRetrainMethod({ store: new MemoryCheckpointStore(), runtime });
    const model = await sisa.train({ modelId: 'sweep', config: sisaConfig, samples: train, testSet: test });
    const monoModel = await mono.train({ modelId: 'sweep-mono', config: monoConfig, samples: train, testSet: test });
    await mono.release();
    const ids = pickPerSlice(train, sisaConfig, 1, 7);
    const runs: ForgetRun[] = [];
    for (const id of ids) runs.push(await timeForget(sisa, model, { requestIds: [id], externalIds: [id], testSet: test }));
    const [other] = pickPerSlice(train, sisaConfig, 1, 101, new Set(ids));
    const baseline = await timeForget(sisa, model, { requestIds: [other], externalIds: [other], testSet: test, retrainFromScratch: true });
    await sisa.release();
    const sisaAcc = Number(model.metrics.testAccuracy);
    const monoAcc = Number(monoModel.metrics.testAccuracy);
    const single = avg(runs);
    rows.push([
      `batch ${sisaConfig.batchSize}, lr ${sisaConfig.learningRate}, ${sisaConfig.epochs} epochs, hidden ${(
        sisaConfig.hiddenLayers ?? []
      ).join('-')}${sisaConfig.weightDecay ? `, wd ${sisaConfig.weightDecay}` : ''}`,
      pct(sisaAcc),
      pct(monoAcc),
      f(100 * (monoAcc - sisaAcc), 2),
      f(baseline.seconds),
      f(single.seconds),
      faster(baseline, single),
    ]);
  }
  return rows;
}

export function mnistConfig(method: 'sisa' | 'full-retrain', threads: number, epochs: number): TrainingConfigInput {
  const sharding = method === 'sisa' ? { shards: 10, slices: 5 } : {};
  return {
    method,
    model: 'mlp',
    seed: 'bench-seed',
    threads,
    hiddenLayers: [128],
    numFeatures: 784,
    numClasses: 10,
    epochs,
    batchSize: 8,
    learningRate: 0.3,
    ...sharding,
  };
}

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const { threads, quick, purchaseSamples, sweep } = options;
  const epochs = options.epochs ?? 0; // 0: each dataset's own default below
  const storeKind: StoreKind = options.store;

  configureHeapForTraining(); // as the service's workers run
  const mnistSplit = splitTrainTest(loadMnist(), { seed: 'bench-split', testFraction: 0.2 });
  const mnist = { train: mnistSplit.train, test: compactFeatures(mnistSplit.test) };
  const mnistTrain = commit(mnist.train);
  if (sweep) {
    const settings: Partial<TrainingConfigInput>[] = [
      { batchSize: 64 },
      { batchSize: 32 },
      { batchSize: 16 },
      { batchSize: 8 },
      { batchSize: 8, epochs: 5 },
      { batchSize: 8, learningRate: 0.2 },
    ];
    const rows = await sweepMnist(mnistTrain, mnist.test, threads, settings);
    printTable(
      `libs/unlearning: MNIST settings, SISA S=10 R=5 vs monolithic with the same hyperparameters (MLP 784-128-10, mean aggregation, threads=${threads}, load ${loadAverage()})`,
      [
        'setting',
        'SISA test acc',
        'monolithic',
        'gap (points)',
        'baseline: full retrain serving 1 (s)',
        'SISA forget 1 (s, mean of 5)',
        'speed-up',
      ],
      rows,
    );
    return;
  }
  const scenarios: Scenario[] = [
    {
      name: 'MNIST',
      train: mnistTrain,
      test: mnist.test,
      evidenceTest: mnist.test,
      sisa: mnistConfig('sisa', threads, epochs || 10),
      monolithic: mnistConfig('full-retrain', threads, epochs || 10),
    },
  ];
  if (purchaseSamples > 0) {
    const purchase = splitTrainTest(makePurchaseLike(purchaseSamples), { seed: 'bench-split', testFraction: 0.2 });
    const common = {
      model: 'mlp' as const,
      seed: 'bench-seed',
      threads,
      hiddenLayers: [128],
      numFeatures: 600,
      numClasses: 100,
      epochs: epochs || 4,
      batchSize: 64,
      learningRate: 0.3,
    };
    scenarios.push({
      name: `Purchase-like ${purchaseSamples}x600`,
      train: commit(purchase.train),
      test: compactFeatures(purchase.test),
      evidenceTest: compactFeatures(purchase.test.slice(0, 2000)),
      sisa: { ...common, method: 'sisa', shards: 10, slices: 5 },
      monolithic: { ...common, method: 'full-retrain' },
    });
  }

  // Each dataset's tables are printed as soon as it is done (a long run keeps what it measured).
  for (const scenario of scenarios) {
    const before = loadAverage();
    const out = await benchScenario(scenario, quick, threads, storeKind);
    const setup = `threads=${threads}, ${storeKind} checkpoint store, in-memory ledger sink, evidence on 1000 retained + the forgotten + the test rows; load average ${before} -> ${loadAverage()}`;
    const configs = [
      [scenario.name, 'SISA', describeConfig(scenario.sisa)],
      [scenario.name, 'monolithic', describeConfig(scenario.monolithic)],
    ];
    printTable(
      'libs/unlearning: configurations (each forget request also evaluates before/after and publishes)',
      ['dataset', 'side', 'hyperparameters'],
      configs,
    );
    printTable(
      `libs/unlearning: forget serving time vs a full retrain serving the same request (${setup})`,
      ['dataset', 'operation', 'time', 'vs baseline', 'note'],
      out.timing,
    );
    printTable(
      'libs/unlearning: where a forget request goes (mean wall seconds per phase)',
      ['dataset', 'run', ...PHASES, 'total'],
      out.phases,
    );
    printTable('libs/unlearning: quality', ['dataset', 'measure', 'SISA / after', 'baseline', 'note'], out.quality);
    printTable(
      'libs/unlearning: training throughput (medians of interleaved 0.5 s runs)',
      ['dataset', 'what', 'GFLOP/s', 'vs MatMul'],
      out.throughput,
    );
  }
}

export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join('/');
}

export const bench: Bench<typeof flags> = {
  summary: 'SISA unlearning vs full retraining, accuracy, GFLOP/s vs a bare MatMul, membership inference',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/unlearning.bench.ts', bench);
