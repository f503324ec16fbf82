// libs/unlearning: SISA against the monolithic baseline. The baseline is the model a user would otherwise pick:
// one model on all the data with the same architecture and hyperparameters (method full-retrain); forgetting
// from it means training it again without the samples. On MNIST (the `mnist` package's 10,000 digits, not
// MNIST's 70,000) and on a synthetic Purchase-like set (generated here, see makePurchaseLike), SISA S=10 R=5:
//   - one forget (one sample) against the monolithic retrain, both ways serving the request through the same
//     engine call (evidence before/after, ONNX export, manifest, checkpoint writes, ledger events), in >= 5 runs
//     with 95% t-intervals, beside the bound the slice schedule allows (printed, computed from the schedule);
//   - one data subject (3 samples, in several shards) the same way, with its bound;
//   - both test accuracies (goal: SISA within 2 points of monolithic);
//   - requests arriving over time (Poisson, 1 per minute and 1 per second), batching allowed on both sides:
//     whatever waits when a side is free goes into its next pass; the latency and throughput each side gets;
//   - secondary rows: retraining the SISA ensemble from scratch (the baseline of earlier runs of this bench),
//     a first forget with nothing cached, 10 and 100 requests served at once, and training GFLOP/s against a
//     bare ONNX MatMul of the same shapes.
// Run: npm run bench -- unlearning [flags], or node -r ./scripts/register.js bench/unlearning.bench.ts [flags]
// (--help lists them; --quick is a cheap smoke run). Times are wall-clock and this process's CPU time.
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CheckpointStore,
  FileCheckpointStore,
  ForgetEvidence,
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
import { seededRandom } from './lib/random';
import { formatInterval, meanInterval } from './lib/stats';
import { percentile, printTable } from './lib/table';

const flags = defineFlags({
  purchaseSamples: { type: 'integer', min: 0, help: 'samples of the synthetic Purchase-like set (default 200000; 0, and with --quick, skips it)' },
  epochs: { type: 'integer', min: 1, help: 'epochs of both sides (default 10 on MNIST, 4 on Purchase-like)' },
  threads: { type: 'integer', min: 1, default: 1, help: 'onnxruntime intra-op threads' },
  runs: { type: 'integer', min: 2, help: 'runs of each timed comparison, for the 95% intervals (default 5, 2 with --quick)' },
  arrivals: {
    type: 'integers',
    min: 1,
    help: 'requests per simulated arrival trace at 1 per minute and at 1 per second (default 10,60; 3,10 with --quick)',
  },
  quick: { type: 'boolean', help: 'a cheap smoke run: 2 runs, short traces, MNIST only unless --purchase-samples is given' },
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

/** `count` distinct items picked by a fixed xorshift sequence, so every run forgets the same samples. */
function pick<T>(items: readonly T[], count: number, seed: number): T[] {
  const next = seededRandom(seed);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, items.length)) chosen.add(Math.floor(next() * items.length));
  return [...chosen].map((i) => items[i]);
}

/** Salted commitments, features held as the service holds them (float32 views of one matrix, compactFeatures). */
export function commit(examples: readonly LabeledExample[]): Sample[] {
  return compactFeatures(
    examples.map((e) => ({ ...e, commitment: createHash('sha256').update('bench-salt|').update(e.externalId).digest('hex') })),
  );
}

/**
 * Purchase-like, synthetic (Shokri et al.'s Purchase-100 has 600 binary features, 100 classes; this is generated,
 * not their data): 10 seeded base patterns (25% ones); each class copies one and redraws 4% of its bits; each
 * sample flips 20% of its class's bits. `shape` sets the features, classes and base patterns (default 600, 100, 10):
 * classes sharing a base differ in a few bits only, which is what makes the set hard.
 */
export function makePurchaseLike(
  count: number,
  seed = 1,
  shape: { features: number; classes: number; bases?: number } = { features: 600, classes: 100 },
): LabeledExample[] {
  const next = seededRandom(seed);
  const { classes, features } = shape;
  const baseCount = shape.bases ?? 10;
  const bases = Array.from({ length: baseCount }, () => Array.from({ length: features }, () => (next() < 0.25 ? 1 : 0)));
  const prototypes = Array.from({ length: classes }, (_, c) =>
    bases[c % baseCount].map((bit) => (next() < 0.04 ? (next() < 0.25 ? 1 : 0) : bit)),
  );
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
  let weights = initializeWeights(layers, 'bench');
  return (seconds) =>
    gflopsOver(seconds, batch * stepMacs(layers) * 2, async (steps) => {
      // 20 steps per call (runSteps: one run of the steps graph).
      const batches = Array.from({ length: 20 }, (_, k) => {
        const offset = ((steps + k) * batch) % (rows.length - batch);
        return Array.from({ length: batch }, (_, i) => offset + i);
      });
      weights = await runner.runSteps(weights, rows, batches);
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
  /** What the data is, said plainly. */
  description: string;
  train: Sample[];
  test: LabeledExample[];
  /** Held-out samples given to forget requests for the evidence (test accuracy, loss-threshold AUC). */
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
 * `perSlice` samples of every slice r, picked by a fixed xorshift sequence, none of them in `exclude`, as
 * `perSlice` lists of one sample per slice (list i holds slice r's i-th pick at position r): the requests of a
 * run retrain from each slice once, as uniformly random requests do on average.
 */
function pickPerSlice(
  samples: readonly Sample[],
  config: TrainingConfigInput,
  perSlice: number,
  seed: number,
  exclude: ReadonlySet<string> = new Set(),
): string[][] {
  const slices = config.slices ?? 1;
  const candidates = samples.filter((x) => !exclude.has(x.externalId));
  const sliceOf = candidates.map((x) => placeSample(String(config.seed), x.externalId, config.shards ?? 1, slices).slice);
  const bySlice = Array.from({ length: slices }, (_, r) =>
    pick(
      candidates.filter((_, i) => sliceOf[i] === r),
      perSlice,
      seed + r,
    ).map((x) => x.externalId),
  );
  return Array.from({ length: perSlice }, (_, i) => bySlice.map((ids) => ids[i]));
}

/**
 * Slice-units a SISA shard retrains from slice `fromSlice` on: slice k costs its epochs x (k + 1) units, since
 * it trains on slices 0..k. One unit is one epoch over one slice's samples (N / SR of them).
 */
function sliceUnits(config: TrainingConfigInput, fromSlice: number): number {
  const epochs = epochsOfSlices(normalizeConfig(config));
  let units = 0;
  for (let k = fromSlice; k < epochs.length; k++) units += epochs[k] * (k + 1);
  return units;
}

/**
 * Expected slice-units one shard retrains when k uniformly random samples are forgotten at once: the shard
 * restarts at the earliest slice holding one of them, and P(earliest >= j) = (1 - j / SR)^k (none at all: 0).
 */
function expectedShardUnits(config: TrainingConfigInput, k: number): number {
  const cells = (config.shards ?? 1) * (config.slices ?? 1);
  let units = 0;
  for (let j = 0; j < (config.slices ?? 1); j++) units += ((1 - j / cells) ** k - (1 - (j + 1) / cells) ** k) * sliceUnits(config, j);
  return units;
}

interface Bounds {
  /** Against training the monolithic model again: its e epochs over all N samples are e x S x R units. */
  monolithic: number;
  /** Against retraining the SISA ensemble from scratch (all S x R slices): S x sliceUnits(0). */
  ensemble: number;
}

/**
 * What the slice schedule alone allows SISA for k uniformly random samples forgotten at once: no exact method
 * that retrains these shard models can do better, since it must publish the bytes a training without them gives.
 * At S=10 R=5, 10 epochs (schedule 3,3,4,3,3): 14.4x against the monolithic model and 13.8x against the ensemble
 * for one sample.
 */
function expectedBounds(sisa: TrainingConfigInput, monolithicEpochs: number, k: number): Bounds {
  const shards = sisa.shards ?? 1;
  const units = shards * expectedShardUnits(sisa, k);
  return { monolithic: (monolithicEpochs * shards * (sisa.slices ?? 1)) / units, ensemble: (shards * sliceUnits(sisa, 0)) / units };
}

/** The same bounds for the shards and slices a forget actually retrained. */
function boundsOf(sisa: TrainingConfigInput, monolithicEpochs: number, fromSlices: number[]): Bounds {
  const shards = sisa.shards ?? 1;
  const units = fromSlices.reduce((sum, from) => sum + sliceUnits(sisa, from), 0);
  return { monolithic: (monolithicEpochs * shards * (sisa.slices ?? 1)) / units, ensemble: (shards * sliceUnits(sisa, 0)) / units };
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
/**
 * One forget as the service runs it: published first (`seconds`, `cpu`: until the new version could be served),
 * then its evidence measured (`evidenceSeconds`: accuracies before and after on the evaluation rows).
 */
type ForgetRun = Timed & {
  evidenceSeconds: number;
  phases: { [phase: string]: number };
  fromSlices: number[];
  steps: number;
  sha: string;
  model: TrainedModel;
  evidence: ForgetEvidence;
};

/** The phases of publishing a forget (ForgetTimings.phases); its evidence follows (evidence.* phases). */
const PHASES = ['prepare', 'plan', 'train', 'members', 'export', 'checkpointWrites', 'manifest', 'ledger'];
const EVIDENCE_PHASES = ['evidence.prepare', 'evidence.evaluateBefore', 'evidence.evaluateAfter', 'evidence.ledger'];

async function timeForget(method: UnlearningMethod, model: TrainedModel, request: ForgetRequest): Promise<ForgetRun> {
  const { requestIds, externalIds, retrainFromScratch, ...evidenceOf } = request;
  const published = await timeAsync(() => method.publishForget!(model, { requestIds, externalIds, retrainFromScratch }));
  const recorded = await timeAsync(() => method.recordEvidence!(model, published.result.model, { requestIds, ...evidenceOf }));
  const evidencePhases = Object.fromEntries(Object.entries(recorded.result.timings).map(([phase, seconds]) => [`evidence.${phase}`, seconds]));
  return {
    seconds: published.seconds,
    cpu: published.cpu,
    evidenceSeconds: recorded.seconds,
    phases: { ...published.result.timings.phases, ...evidencePhases },
    fromSlices: published.result.affected.map((a) => a.fromSlice),
    steps: published.result.steps,
    sha: published.result.model.onnxSha256,
    model: published.result.model,
    evidence: recorded.result.evidence,
  };
}

const avg = (xs: Timed[]): Timed => ({ seconds: mean(xs.map((x) => x.seconds)), cpu: mean(xs.map((x) => x.cpu)) });
const show = (t: Timed) => `${f(t.seconds)} s (cpu ${f(t.cpu)} s)`;
const wallInterval = (runs: Timed[]) => `${formatInterval(meanInterval(runs.map((r) => r.seconds)), 3)} s`;
const cpuMean = (runs: Timed[]) => `${f(mean(runs.map((r) => r.cpu)))} s`;
const evidenceMean = (runs: ForgetRun[]) => `${f(mean(runs.map((r) => r.evidenceSeconds)))} s`;
const faster = (base: Timed, t: Timed) => `${f(base.seconds / t.seconds, 1)}x wall, ${f(base.cpu / t.cpu, 1)}x cpu`;

/**
 * Requests arriving over time at one side, batching allowed: a Poisson process of `count` requests at `perSecond`
 * (seeded); whenever the side is free and requests wait, all of them go into its next pass. A pass serves its new
 * version after `served` seconds (a request's latency ends there) and keeps the side busy `busy` seconds (its
 * evidence follows the publication, as in the service, where the pass holds the dataset until then). The clock
 * is simulated; the passes' times are measured (or, for the monolithic retrain, taken from measured runs: see
 * the caller).
 */
interface Trace {
  latencies: number[];
  passes: number;
  /** Requests per pass. */
  batch: number[];
  busySeconds: number;
  /** From the first arrival to the last pass's end. */
  spanSeconds: number;
}

async function simulateArrivals(
  perSecond: number,
  count: number,
  seed: number,
  serve: (requests: number) => Promise<{ served: number; busy: number }>,
): Promise<Trace> {
  const next = seededRandom(seed);
  const arrivals: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) arrivals.push((t += -Math.log(1 - next()) / perSecond));
  const trace: Trace = { latencies: [], passes: 0, batch: [], busySeconds: 0, spanSeconds: 0 };
  let now = arrivals[0];
  let admitted = 0;
  while (admitted < count) {
    now = Math.max(now, arrivals[admitted]);
    const waiting: number[] = [];
    while (admitted < count && arrivals[admitted] <= now) waiting.push(arrivals[admitted++]);
    const pass = await serve(waiting.length);
    for (const at of waiting) trace.latencies.push(now + pass.served - at);
    now += pass.busy;
    trace.passes++;
    trace.batch.push(waiting.length);
    trace.busySeconds += pass.busy;
  }
  trace.spanSeconds = now - arrivals[0];
  return trace;
}

interface ScenarioResult {
  timing: Row[];
  phases: Row[];
  arrivals: Row[];
  quality: Row[];
  throughput: Row[];
}

interface RunPlan {
  runs: number;
  arrivals: [number, number];
  threads: number;
  storeKind: StoreKind;
}

async function benchScenario(s: Scenario, plan: RunPlan): Promise<ScenarioResult> {
  const { runs, threads } = plan;
  const stores = createStores(plan.storeKind);
  let trainPhaseEnded = 0n;
  const onProgress = (p: { phase: string }) => {
    if (p.phase === 'publish' && trainPhaseEnded === 0n) trainPhaseEnded = process.hrtime.bigint();
  };
  const runtime = { intraOpNumThreads: threads };
  const store = stores.create();
  const sisa = createSisaMethod({ store, ledger: new MemoryLedgerSink(), runtime, onProgress });
  const monolithic = createFullRetrainMethod({ store: stores.create(), ledger: new MemoryLedgerSink(), runtime });
  const monoEpochs = s.monolithic.epochs as number;
  const slices = s.sisa.slices ?? 1;
  try {
    const trainStart = process.hrtime.bigint();
    const trainedSisa = await timeAsync(() => sisa.train({ modelId: `${s.name}-sisa`, config: s.sisa, samples: s.train, testSet: s.test }));
    const trainSeconds = Number(trainPhaseEnded - trainStart) / 1e9;
    const trainedMono = await timeAsync(() =>
      monolithic.train({ modelId: `${s.name}-mono`, config: s.monolithic, samples: s.train, testSet: s.test }),
    );
    const model: TrainedModel = trainedSisa.result;
    const mono: TrainedModel = trainedMono.result;
    const request = (ids: string[], extra: Partial<ForgetRequest> = {}): ForgetRequest => ({
      requestIds: ids.map((id) => `r-${id}`),
      externalIds: ids,
      testSet: s.evidenceTest,
      ...extra,
    });

    // Run i: the monolithic retrain without one sample, then SISA forgetting one sample of each slice (R
    // requests, each from the trained version, so the runs are alike), then one data subject (3 samples), then
    // a first forget on a method with nothing cached. Every request names samples no other one names, and
    // both sides of a run see the same stretch of the machine's load.
    const singles = pickPerSlice(s.train, s.sisa, runs, 7);
    const used = new Set(singles.flat());
    const monoIds = pick(
      s.train.filter((x) => !used.has(x.externalId)),
      runs,
      3,
    ).map((x) => x.externalId);
    monoIds.forEach((id) => used.add(id));
    const subjectPool = pick(
      s.train.filter((x) => !used.has(x.externalId)),
      3 * runs,
      5,
    ).map((x) => x.externalId);
    subjectPool.forEach((id) => used.add(id));
    const subjects = Array.from({ length: runs }, (_, i) => subjectPool.slice(3 * i, 3 * i + 3));
    const monoRuns: ForgetRun[] = [];
    const singleRuns: ForgetRun[][] = [];
    const subjectRuns: ForgetRun[] = [];
    const coldRuns: ForgetRun[] = [];
    for (let run = 0; run < runs; run++) {
      monoRuns.push(await timeForget(monolithic, mono, request([monoIds[run]])));
      const perSlice: ForgetRun[] = [];
      for (const id of singles[run]) perSlice.push(await timeForget(sisa, model, request([id])));
      singleRuns.push(perSlice);
      subjectRuns.push(await timeForget(sisa, model, request(subjects[run])));
      const cold = createSisaMethod({ store, ledger: new MemoryLedgerSink(), runtime });
      coldRuns.push(await timeForget(cold, model, request([singles[run][run % slices]])));
      await cold.release();
    }
    // Secondary: the baseline of earlier runs of this bench, retraining the SISA ensemble from scratch (same
    // published bytes as the SISA forget of the same sample: the exactness check).
    const ensembleRuns: ForgetRun[] = [];
    for (let run = 0; run < Math.min(runs, 2); run++)
      ensembleRuns.push(await timeForget(sisa, model, request([singles[run][0]], { retrainFromScratch: true })));
    const exact = ensembleRuns.every((r, run) => r.sha === singleRuns[run][0].sha);
    const ten = pick(s.train.filter((x) => !used.has(x.externalId)), 10, 11).map((x) => x.externalId);
    const hundred = pick(s.train.filter((x) => !used.has(x.externalId)), 100, 13).map((x) => x.externalId);
    const forgetTen = await timeForget(sisa, model, request(ten));
    const forgetHundred = await timeForget(sisa, model, request(hundred));

    const flatSingles = singleRuns.flat();
    const singleMeans = singleRuns.map(avg);
    const speedups = monoRuns.map((m, run) => m.seconds / singleMeans[run].seconds);
    const cpuSpeedups = monoRuns.map((m, run) => m.cpu / singleMeans[run].cpu);
    const subjectSpeedups = monoRuns.map((m, run) => m.seconds / subjectRuns[run].seconds);
    const one = expectedBounds(s.sisa, monoEpochs, 1);
    const three = expectedBounds(s.sisa, monoEpochs, 3);
    const steps = (runsOf: ForgetRun[]) => mean(runsOf.map((r) => r.steps));
    const monoSteps = steps(monoRuns);
    const x = (v: number) => `${f(v, 1)}x`;
    const interval = (values: number[]) => `${formatInterval(meanInterval(values), 1)}x`;
    const shardsOf = (run: ForgetRun) => `${run.fromSlices.length} shards from slices ${run.fromSlices.join(',')}`;
    const atOnce = (k: number, run: ForgetRun): Row => [
      s.name,
      `  SISA forget ${k} requests at once, one pass`,
      show(run),
      evidenceMean([run]),
      faster(avg(monoRuns), run),
      `${shardsOf(run)}; bound ${x(boundsOf(s.sisa, monoEpochs, run.fromSlices).monolithic)} for these, ${x(
        expectedBounds(s.sisa, monoEpochs, k).monolithic,
      )} for ${k} random`,
    ];
    const timing: Row[] = [
      [s.name, 'monolithic: train', show(trainedMono), '', '', describeConfig(s.monolithic)],
      [s.name, 'SISA: train', show(trainedSisa), '', '', `training phase ${f(trainSeconds)} s wall, then publish + evaluation; ${describeConfig(s.sisa)}`],
      [
        s.name,
        'monolithic forget 1 sample = train it again without it (baseline)',
        `${wallInterval(monoRuns)} (cpu ${cpuMean(monoRuns)})`,
        evidenceMean(monoRuns),
        '1.00x',
        `${runs} runs; ${f(monoSteps, 0)} optimizer steps`,
      ],
      [
        s.name,
        'SISA forget 1 sample (goal: >= 10x)',
        `${wallInterval(flatSingles)} (cpu ${cpuMean(flatSingles)})`,
        evidenceMean(flatSingles),
        `${interval(speedups)} wall, ${interval(cpuSpeedups)} cpu`,
        `${runs} runs x ${slices} requests (one per slice); schedule's bound ${x(one.monolithic)} (steps of these: ${x(monoSteps / steps(flatSingles))})`,
      ],
      [
        s.name,
        'SISA forget 1 data subject (3 samples)',
        `${wallInterval(subjectRuns)} (cpu ${cpuMean(subjectRuns)})`,
        evidenceMean(subjectRuns),
        `${interval(subjectSpeedups)} wall`,
        `${runs} subjects: ${subjectRuns.map(shardsOf).join('; ')}; bound ${x(three.monolithic)} for 3 random samples, ${x(
          mean(subjectRuns.map((r) => boundsOf(s.sisa, monoEpochs, r.fromSlices).monolithic)),
        )} for these`,
      ],
      [
        s.name,
        '  SISA forget 1 sample, nothing cached (a fresh method)',
        `${wallInterval(coldRuns)} (cpu ${cpuMean(coldRuns)})`,
        evidenceMean(coldRuns),
        faster(avg(monoRuns), avg(coldRuns)),
        `${runs} runs, from slices ${coldRuns.map((r) => r.fromSlices[0]).join(',')}: the old version's members loaded from the store and evaluated whole`,
      ],
      [
        s.name,
        '  SISA ensemble retrained from scratch serving 1 request (the old baseline; secondary)',
        `${wallInterval(ensembleRuns)} (cpu ${cpuMean(ensembleRuns)})`,
        evidenceMean(ensembleRuns),
        `SISA forget ${f(mean(ensembleRuns.map((r) => r.seconds)) / avg(flatSingles).seconds, 1)}x faster than it`,
        `${ensembleRuns.length} runs, all ${s.sisa.shards}x${slices} slices; schedule's bound against it ${x(one.ensemble)}`,
      ],
      atOnce(10, forgetTen),
      atOnce(100, forgetHundred),
    ];
    const phaseRow = (label: string, runsOf: ForgetRun[]) => [
      s.name,
      label,
      ...PHASES.map((p) => f(mean(runsOf.map((r) => r.phases[p] ?? 0)))),
      f(mean(runsOf.map((r) => r.seconds))),
      ...EVIDENCE_PHASES.map((p) => f(mean(runsOf.map((r) => r.phases[p] ?? 0)))),
    ];
    const phases: Row[] = [
      phaseRow('monolithic forget 1 (baseline)', monoRuns),
      phaseRow('SISA forget 1', flatSingles),
      phaseRow('SISA forget 1 subject', subjectRuns),
      phaseRow('  nothing cached', coldRuns),
    ];

    const arrivals = await simulateBoth(s, plan, sisa, model, monoRuns, request);

    const monoAcc = Number(mono.metrics.testAccuracy);
    const sisaAcc = Number(model.metrics.testAccuracy);
    const quality: Row[] = [
      [
        s.name,
        'test accuracy: SISA ensemble vs monolithic (goal: within 2 points)',
        pct(sisaAcc),
        pct(monoAcc),
        `${f(100 * (monoAcc - sisaAcc), 2)} points behind (${s.test.length} test rows; deterministic: the same bytes every run)`,
      ],
      [
        s.name,
        'test accuracy after forgetting 1 sample: SISA vs monolithic',
        pct(flatSingles[0].evidence.after.testAccuracy ?? NaN),
        pct(monoRuns[0].evidence.after.testAccuracy ?? NaN),
        '',
      ],
      [
        s.name,
        'SISA forget publishes the bytes of the SISA ensemble retrained from scratch without the sample',
        exact ? 'identical' : 'DIFFERENT',
        ensembleRuns[0].sha.slice(0, 16),
        `${ensembleRuns.length} samples checked`,
      ],
    ];
    const layers = [s.sisa.numFeatures, ...(s.sisa.hiddenLayers ?? []), s.sisa.numClasses];
    const batch = s.sisa.batchSize as number;
    const measured = await measureInterleaved(layers, batch, threads, s.train, runs > 2 ? 7 : 3);
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
    return { timing, phases, arrivals, quality, throughput };
  } finally {
    await sisa.release();
    await monolithic.release();
    stores.cleanup();
  }
}

/**
 * Requests arriving over time, at 1 per minute and 1 per second, `runs` traces each (other seeds), on both sides.
 * SISA's passes run for real on the engine, each forgetting what waited from the version the previous pass
 * published (a trace starts from the trained version), one uniformly random sample per request. The monolithic
 * side's passes take the retrain times measured above, in turn: a retrain costs the same whichever and however
 * many samples it leaves out (its steps depend on N only), so running it again would measure the same thing.
 */
async function simulateBoth(
  s: Scenario,
  plan: RunPlan,
  sisa: UnlearningMethod,
  trained: TrainedModel,
  monoRuns: ForgetRun[],
  request: (ids: string[]) => ForgetRequest,
): Promise<Row[]> {
  const rows: Row[] = [];
  const rates = [
    { label: '1 per minute', perSecond: 1 / 60, count: plan.arrivals[0] },
    { label: '1 per second', perSecond: 1, count: plan.arrivals[1] },
  ];
  for (const rate of rates) {
    const sides: { side: string; traces: Trace[] }[] = [
      { side: 'monolithic (retrain per pass)', traces: [] },
      { side: 'SISA', traces: [] },
    ];
    for (let trace = 0; trace < plan.runs; trace++) {
      const seed = 1000 + 17 * trace + Math.round(rate.perSecond * 60);
      let turn = trace;
      sides[0].traces.push(
        await simulateArrivals(rate.perSecond, rate.count, seed, async () => {
          const run = monoRuns[turn++ % monoRuns.length];
          return { served: run.seconds, busy: run.seconds + run.evidenceSeconds };
        }),
      );
      const order = pick(s.train, rate.count, seed).map((x) => x.externalId);
      let current = trained;
      let next = 0;
      sides[1].traces.push(
        await simulateArrivals(rate.perSecond, rate.count, seed, async (requests) => {
          const pass = await timeForget(sisa, current, request(order.slice(next, (next += requests))));
          current = pass.model;
          return { served: pass.seconds, busy: pass.seconds + pass.evidenceSeconds };
        }),
      );
    }
    for (const { side, traces } of sides) {
      const latencies = traces.flatMap((t) => t.latencies);
      const batches = traces.flatMap((t) => t.batch);
      const busy = traces.reduce((sum, t) => sum + t.busySeconds, 0);
      rows.push([
        s.name,
        rate.label,
        side,
        `${traces.length} x ${rate.count}`,
        `${formatInterval(meanInterval(traces.map((t) => mean(t.latencies))), 2)} s`,
        f(percentile(latencies, 50), 2),
        f(percentile(latencies, 95), 2),
        f(Math.max(...latencies), 2),
        `${f(mean(batches), 1)} (max ${Math.max(...batches)})`,
        pct(busy / traces.reduce((sum, t) => sum + t.spanSeconds, 0)),
        f(latencies.length / busy, 2),
      ]);
    }
  }
  return rows;
}

/**
 * MNIST only: SISA (S=10, R=5) and the monolithic model with the same hyperparameters, for several settings:
 * accuracy against the cost of one forget (5 requests, one per slice) and of the monolithic retrain.
 */
async function sweepMnist(train: Sample[], test: LabeledExample[], threads: number, settings: Partial<TrainingConfigInput>[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const setting of settings) {
    const sisaConfig = { ...mnistConfig('sisa', threads, 10), ...setting } as TrainingConfigInput;
    const monoConfig = { ...mnistConfig('full-retrain', threads, 10), ...setting } as TrainingConfigInput;
    const runtime = { intraOpNumThreads: threads };
    const sisa = createSisaMethod({ store: new MemoryCheckpointStore(), ledger: new MemoryLedgerSink(), runtime });
    const mono = createFullRetrainMethod({ store: new MemoryCheckpointStore(), runtime });
    const model = await sisa.train({ modelId: 'sweep', config: sisaConfig, samples: train, testSet: test });
    const monoModel = await mono.train({ modelId: 'sweep-mono', config: monoConfig, samples: train, testSet: test });
    const [ids] = pickPerSlice(train, sisaConfig, 1, 7);
    const runs: ForgetRun[] = [];
    for (const id of ids) runs.push(await timeForget(sisa, model, { requestIds: [id], externalIds: [id], testSet: test }));
    const [other] = pick(train.filter((x) => !ids.includes(x.externalId)), 1, 101);
    const baseline = await timeForget(mono, monoModel, { requestIds: [other.externalId], externalIds: [other.externalId], testSet: test });
    await sisa.release();
    await mono.release();
    const sisaAcc = Number(model.metrics.testAccuracy);
    const monoAcc = Number(monoModel.metrics.testAccuracy);
    const single = avg(runs);
    rows.push([
      `batch ${sisaConfig.batchSize}, lr ${sisaConfig.learningRate}, ${sisaConfig.epochs} epochs, hidden ${(sisaConfig.hiddenLayers ?? []).join('-')}${
        sisaConfig.weightDecay ? `, wd ${sisaConfig.weightDecay}` : ''
      }`,
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

/**
 * A dataset's seeded 80/20 split, committed and held as float32 views (commit, compactFeatures), plus the first
 * `evidenceRows` test rows (all by default) for the forget requests' evidence. Built in a function of its own so
 * that the generated rows (number arrays, 8 bytes a value: about 1 GB for Purchase-like 200k) are garbage once it
 * returns: held in run()'s async frame across its awaits, they stayed live through every measurement, and each
 * full collection of V8 marked them again.
 */
function splitCommitted(
  load: () => LabeledExample[],
  evidenceRows?: number,
): { train: Sample[]; test: LabeledExample[]; evidenceTest: LabeledExample[] } {
  const split = splitTrainTest(load(), { seed: 'bench-split', testFraction: 0.2 });
  const test = compactFeatures(split.test);
  return { train: commit(split.train), test, evidenceTest: evidenceRows === undefined ? test : compactFeatures(split.test.slice(0, evidenceRows)) };
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
  const { threads, quick, sweep } = options;
  const epochs = options.epochs ?? 0; // 0: each dataset's own default below
  const runs = options.runs ?? (quick ? 2 : 5);
  const arrivals = (options.arrivals ?? (quick ? [3, 10] : [10, 60])) as number[];
  if (arrivals.length !== 2) throw new Error(`--arrivals takes two counts (at 1 per minute, at 1 per second), got ${arrivals.length}`);
  const purchaseSamples = options.purchaseSamples ?? (quick ? 0 : 200_000);
  const plan: RunPlan = { runs, arrivals: [arrivals[0], arrivals[1]], threads, storeKind: options.store };

  configureHeapForTraining(); // as the service's workers run
  const mnist = splitCommitted(loadMnist);
  const mnistTrain = mnist.train;
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
      ['setting', 'SISA test acc', 'monolithic', 'gap (points)', 'baseline: monolithic forget 1 (s)', 'SISA forget 1 (s, mean of 5)', 'speed-up'],
      rows,
    );
    return;
  }
  const scenarios: Scenario[] = [
    {
      name: 'MNIST',
      description: "MNIST as the `mnist` package ships it: 10,000 digits (not MNIST's 70,000), 8,000 trained / 2,000 tested (seeded 80/20 split)",
      train: mnistTrain,
      test: mnist.test,
      evidenceTest: mnist.test,
      sisa: mnistConfig('sisa', threads, epochs || 10),
      monolithic: mnistConfig('full-retrain', threads, epochs || 10),
    },
  ];
  if (purchaseSamples > 0) {
    const purchase = splitCommitted(() => makePurchaseLike(purchaseSamples), 2000);
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
      name: `Purchase-like ${purchaseSamples / 1000}k`,
      description: `Purchase-like, synthetic (generated by makePurchaseLike; shaped like Purchase-100, not its data): ${purchaseSamples.toLocaleString(
        'en-US',
      )} x 600 binary features, 100 classes, 80/20 split (2,000 test rows go to the forget requests' evidence)`,
      train: purchase.train,
      test: purchase.test,
      evidenceTest: purchase.evidenceTest,
      sisa: { ...common, method: 'sisa', shards: 10, slices: 5 },
      monolithic: { ...common, method: 'full-retrain' },
    });
  }

  // Each dataset's tables are printed as soon as it is done (a long run keeps what it measured).
  for (const scenario of scenarios) {
    const before = loadAverage();
    const out = await benchScenario(scenario, plan);
    const setup = `threads=${threads}, ${plan.storeKind} checkpoint store, in-memory ledger sink; load average ${before} -> ${loadAverage()} on ${
      require('node:os').cpus().length
    } cores`;
    printTable(`libs/unlearning: ${scenario.name}: data and configurations`, ['dataset', 'what', 'detail'], [
      [scenario.name, 'data', scenario.description],
      [scenario.name, 'SISA', describeConfig(scenario.sisa)],
      [scenario.name, 'monolithic', describeConfig(scenario.monolithic)],
      [
        scenario.name,
        'every forget',
        'one engine call: evidence before/after (1,000 retained, the forgotten, the test rows), ONNX export + SHA-256, manifest, checkpoint writes, ledger events',
      ],
    ]);
    printTable(
      `libs/unlearning: ${scenario.name}: one forget against training the monolithic model again (mean [95% t-interval over runs]; ${setup})`,
      ['dataset', 'operation', 'to published: wall s [95% CI] (cpu)', 'then evidence (s)', 'speed-up vs monolithic retrain [95% CI]', 'note'],
      out.timing,
    );
    printTable(
      `libs/unlearning: ${scenario.name}: where a forget goes (mean wall seconds per phase): publishing (publishForget), then the evidence (recordEvidence)`,
      ['dataset', 'run', ...PHASES, 'published', ...EVIDENCE_PHASES],
      out.phases,
    );
    printTable(
      `libs/unlearning: ${scenario.name}: requests arriving over time (Poisson), batching on both sides: a free side takes everything waiting into one pass; latency until the pass's version is published, the side busy until its evidence is recorded too. SISA passes run on the engine; monolithic passes take the measured retrain times in turn (simulated clock)`,
      ['dataset', 'arrivals', 'side', 'traces x requests', 'mean latency s [95% CI over traces]', 'p50 s', 'p95 s', 'max s', 'requests per pass', 'busy', 'requests per busy second'],
      out.arrivals,
    );
    printTable(`libs/unlearning: ${scenario.name}: quality`, ['dataset', 'measure', 'SISA', 'monolithic / baseline', 'note'], out.quality);
    printTable(`libs/unlearning: ${scenario.name}: training throughput (medians of interleaved 0.5 s runs)`, ['dataset', 'what', 'GFLOP/s', 'vs MatMul'], out.throughput);
  }
}

export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join('/');
}

export const bench: Bench<typeof flags> = {
  summary: 'SISA vs the monolithic retrain: one forget and one subject (>= 5 runs, 95% intervals, the bound), accuracies, requests arriving over time',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/unlearning.bench.ts', bench);
