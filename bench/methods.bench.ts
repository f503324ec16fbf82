// The unlearning methods side by side on MNIST (the `mnist` package's 10,000 digits, 90/10 split: 9,000 to train on,
// 1,000 held out), in one run: full retraining and SISA (exact), approximate unlearning (finetune, NegGrad+, SCRUB)
// of the full model, and certified removal. Per method: the time to forget one digit, test accuracy, the
// membership attack's TPR at 1% FPR before and after forgetting 100 digits the training set holds with wrong
// labels (memorised, so the attack has something to find), and the guarantee the forget records. Baselines in the
// same run: each model's training (retraining from scratch is what forgetting is compared with), and for certified
// removal the same L2 logistic regression without the noise, and its training without the Hessian factors. A
// DP-SGD model (the same MLP, (1, 1e-5)-DP by the RDP accountant, the privacy bench's schedule for ε = 1) forgets
// by its exact method, full retraining with DP-SGD.
// `--certified-runs N` times certified removal alone, N times, each in a fresh process (every run's first removal is
// its process's first), and prints each run and the 95% intervals.
// Run: npm run bench -- methods [--quick] [--shadow-models 8] [--mislabeled 100] [--epochs 10] [--threads 1] [--certified-runs 5]
import type { MembershipEvidence, UnlearnGuarantee } from '@lethe/events';
import { describeGuarantee } from '@lethe/events';
import {
  MemoryCheckpointStore,
  compactFeatures,
  configureHeapForTraining,
  createCertifiedMethod,
  type ForgetEvidence,
  type PublishedForget,
  createFullRetrainMethod,
  createSisaMethod,
  epochsOfSlices,
  fitOneVsRest,
  loadMnist,
  normalizeConfig,
  predictOneVsRest,
  privacyGuarantee,
  resolveCertified,
  resolvePrivacy,
  splitTrainTest,
  type ApproximateOptions,
  type ForgetOutcome,
  type LabeledExample,
  type Sample,
  type TrainedModel,
  type TrainingConfigInput,
  type UnlearningMethod,
} from '@lethe/unlearning';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { formatInterval, meanInterval } from './lib/stats';
import { printTable } from './lib/table';
import { commit, loadAverage, mnistConfig, timeAsync } from './unlearning.bench';

const flags = defineFlags({
  quick: { type: 'boolean', help: '4 shadow models, 3 epochs, 50 mislabeled digits' },
  shadowModels: { type: 'integer', min: 4, help: 'shadow models of the membership attack (default 8, 4 with --quick)' },
  mislabeled: { type: 'integer', min: 20, help: 'training digits given a wrong label, then forgotten (default 100, 50 with --quick)' },
  epochs: { type: 'integer', min: 1, help: 'epochs of the SGD models (default 10, 3 with --quick)' },
  threads: { type: 'integer', min: 1, default: 1, help: 'onnxruntime intra-op threads of training' },
  certifiedRuns: {
    type: 'integer',
    min: 1,
    help: "certified removal's timings only (its baselines, a first and a next removal, no other method, no attack), that many times, each in a fresh process, with 95% intervals",
  },
});

/** Certified removal's settings: (1, 1e-5)-certified at lambda = 1e-4 and sigma = 1. */
const CERTIFIED = { epsilon: 1, delta: 1e-5, lambda: 1e-4, sigma: 1 };
/** The DP-SGD model: (1, 1e-5)-DP (RDP accountant), clip norm 1, expected batch 256, learning rate 1, 10 epochs (the privacy bench's ε = 1 row). */
const DP = { epsilon: 1, delta: 1e-5, clipNorm: 1, batchSize: 256, learningRate: 1, epochs: 10 };

interface MethodRow {
  name: string;
  model: string;
  trainSeconds: number;
  trainCpu: number;
  /** Forgetting one digit: wall and CPU seconds to the published version, and its phases. */
  one: { seconds: number; cpu: number; outcome: ForgetOutcome };
  /** Forgetting the mislabeled digits: the new version, its guarantee and the attack before / after. */
  many: { outcome: ForgetOutcome; membership: MembershipEvidence };
  testAccuracy: number;
  /** What the model itself guarantees beside the forget's guarantee (DP-SGD's ε, δ). */
  modelGuarantee?: string;
}

/** The bench's data: MNIST split 90/10, every 90th training digit (a spread over the classes) given the next class's label (memorised outliers). */
function benchData(mislabeledCount: number) {
  configureHeapForTraining();
  const split = splitTrainTest(loadMnist(), { seed: 'bench-split', testFraction: 0.1 });
  const mislabeled = new Set(split.train.filter((_, i) => i % 90 === 45).slice(0, mislabeledCount).map((e) => e.externalId));
  const train = commit(split.train.map((e) => (mislabeled.has(e.externalId) ? { ...e, label: (e.label + 1) % 10 } : e)));
  const kept = train.filter((s) => !mislabeled.has(s.externalId));
  return { train, test: compactFeatures(split.test), mislabeled, one: [kept[0].externalId], nextOne: [kept[1].externalId] };
}

type Timed<T = unknown> = { seconds: number; cpu: number; result: T };

/** Certified removal's timings in one process, with its baselines in the same process (see certifiedOnce). */
interface CertifiedRun {
  load: { before: string; after: string };
  /** Retraining from scratch as it publishes (L-BFGS, evaluation, ONNX; no Hessians): the baseline of every ratio. */
  bare: Timed<void>;
  /** The same L2 logistic regression without the noise, and its test accuracy. */
  plain: Timed<void>;
  plainAccuracy: number;
  /** The certified model's training (returns with the version published) and its preparation after (Hessians, inverses, the step's warm-up). */
  trained: Timed<void>;
  prepared: Timed<void>;
  /**
   * The process's first removal (one digit), and the next (another digit, from the version it published), each as
   * the API runs it: published first (publishForget), the preparation after it, then its evidence (recordEvidence).
   */
  first: { call: Timed<void>; outcome: ForgetSummary; prepared: Timed<void>; evidence: Timed<void> };
  next: { call: Timed<void>; outcome: ForgetSummary };
}

/** What the bench prints of a forget: its phases (wall and CPU), its test accuracy, guarantee and file. */
interface ForgetSummary {
  phases: { [phase: string]: number };
  cpuPhases: { [phase: string]: number };
  testAccuracy: number;
  guarantee: UnlearnGuarantee | undefined;
  onnxSha256: string;
}

function summarizeForget(outcome: PublishedForget, evidence: ForgetEvidence): ForgetSummary {
  const { phases, cpuPhases = {} } = outcome.timings;
  return { phases, cpuPhases, testAccuracy: evidence.after.testAccuracy ?? NaN, guarantee: outcome.event.guarantee, onnxSha256: outcome.model.onnxSha256 };
}

const void_ = async <T>(timed: Promise<Timed<T>>): Promise<Timed<void>> => ({ ...(await timed), result: undefined });

/**
 * Certified removal in this process: its baselines first (the training without Hessians, the noiseless model),
 * then the model, its preparation, its first removal (the process's first), the preparation after, the first
 * removal's evidence, the next removal. A removal runs as the API's unlearning pass runs it: published first
 * (publishForget: nothing evaluated before the version is), its evidence measured and logged after
 * (recordEvidence). Leaves the method and the trained model to the caller (the full bench forgets the mislabeled
 * digits from it), and the next removal's preparation running.
 */
async function certifiedOnce(data: ReturnType<typeof benchData>) {
  const { train, test, one, nextOne } = data;
  const loadBefore = loadAverage();
  const certifiedConfig: TrainingConfigInput = {
    method: 'certified',
    model: 'logistic-regression',
    numFeatures: 784,
    numClasses: 10,
    seed: 'bench-seed',
    certified: resolveCertified(CERTIFIED, train.length, 'be'.repeat(32)),
  };
  // The baselines: the training without the Hessians (a retraining that only publishes), and the same L2 logistic
  // regression without the noise (the accuracy it is compared with).
  const withoutFactors = createCertifiedMethod({ store: new MemoryCheckpointStore(), log: () => undefined }, { prepareOperators: false });
  const bare = await void_(timeAsync(() => withoutFactors.train({ modelId: 'methods-bench', config: certifiedConfig, samples: train, testSet: test })));
  await withoutFactors.release();
  const plain = await timeAsync(() => fitOneVsRest(train, 784, 10, CERTIFIED.lambda));
  const plainAccuracy = accuracy(predictOneVsRest(plain.result, test, 784, 10), test);
  const method = createCertifiedMethod({ store: new MemoryCheckpointStore(), log: () => undefined });
  const trained = await timeAsync(() => method.train({ modelId: 'methods-bench', config: certifiedConfig, samples: train, testSet: test }));
  const prepared = await timeAsync(() => method.prepared());
  const first = await timeAsync(() => method.publishForget(trained.result, { requestIds: ['one'], externalIds: one }));
  const firstPrepared = await timeAsync(() => method.prepared());
  const firstEvidence = await timeAsync(() => method.recordEvidence(trained.result, first.result.model, { requestIds: ['one'], testSet: test }));
  const next = await timeAsync(() => method.publishForget(first.result.model, { requestIds: ['next'], externalIds: nextOne }));
  const nextPrepared = await timeAsync(() => method.prepared());
  const nextEvidence = await method.recordEvidence(first.result.model, next.result.model, { requestIds: ['next'], testSet: test });
  void nextPrepared;
  const run: CertifiedRun = {
    load: { before: loadBefore, after: loadAverage() },
    bare,
    plain: { ...plain, result: undefined },
    plainAccuracy,
    trained: { ...trained, result: undefined },
    prepared: { ...prepared, result: undefined },
    first: {
      call: { ...first, result: undefined },
      outcome: summarizeForget(first.result, firstEvidence.result.evidence),
      prepared: { ...firstPrepared, result: undefined },
      evidence: { ...firstEvidence, result: undefined },
    },
    next: { call: { ...next, result: undefined }, outcome: summarizeForget(next.result, nextEvidence.evidence) },
  };
  const firstOutcome: ForgetOutcome = { ...first.result, evidence: firstEvidence.result.evidence };
  return { run, method, trained, first: firstOutcome };
}

/** The phases of a forget up to its published version (its operators were ready; the next version's are prepared after, its evidence measured after). */
const TO_PUBLISHED = ['prepare', 'evaluateBefore', 'operators', 'newton', 'version', 'publish', 'ledger'];

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  if (options.certifiedRuns !== undefined) return certifiedRuns(options.certifiedRuns);
  const quick = options.quick;
  const shadowModels = options.shadowModels ?? (quick ? 4 : 8);
  const mislabeledCount = options.mislabeled ?? (quick ? 50 : 100);
  const epochs = options.epochs ?? (quick ? 3 : 10);
  const data = benchData(mislabeledCount);
  const { train, test, mislabeled, one } = data;
  const many = [...mislabeled];
  const loadBefore = loadAverage();
  const rows: MethodRow[] = [];

  const measure = async (
    name: string,
    model: string,
    method: UnlearningMethod,
    trained: { seconds: number; cpu: number; result: TrainedModel },
    approximate?: ApproximateOptions,
    modelGuarantee?: string,
    measured?: Timed<ForgetOutcome>,
  ): Promise<void> => {
    const forgetOne = measured ?? (await timeAsync(() => method.forget(trained.result, { requestIds: ['one'], externalIds: one, testSet: test, approximate })));
    const forgetMany = await method.forget(trained.result, { requestIds: ['many'], externalIds: many, testSet: test, approximate });
    const membership = await method.measureMembership(trained.result, forgetMany.model, { testSet: test, options: { shadowModels, bootstrap: 200 } });
    rows.push({
      name,
      model,
      trainSeconds: trained.seconds,
      trainCpu: trained.cpu,
      one: { seconds: forgetOne.seconds, cpu: forgetOne.cpu, outcome: forgetOne.result },
      many: { outcome: forgetMany, membership },
      testAccuracy: forgetOne.result.evidence.after.testAccuracy ?? NaN,
      modelGuarantee,
    });
    process.stderr.write(`methods bench: ${name} done (load ${loadAverage()})\n`);
  };

  const sgd = async (config: TrainingConfigInput, create: typeof createSisaMethod) => {
    const method = create({ store: new MemoryCheckpointStore() });
    const trained = await timeAsync(() => method.train({ modelId: 'methods-bench', config, samples: train, testSet: test }));
    return { method, trained };
  };
  // Certified removal first: its goals (speed-up, accuracy against the noiseless model) are the issue's.
  const certified = await certifiedOnce(data);
  try {
    await certified.method.prepared(); // the next removal's preparation, before anything else runs
    const { first: firstCall } = certified.run;
    await measure('certified removal', 'one-vs-rest logistic regression, L-BFGS', certified.method, certified.trained, undefined, undefined, { ...firstCall.call, result: certified.first });
  } finally {
    await certified.method.release();
  }
  const mlp = 'MLP 784-128-10';
  const full = await sgd(mnistConfig('full-retrain', options.threads, epochs), createFullRetrainMethod);
  try {
    await measure('full retraining', mlp, full.method, full.trained);
    for (const algorithm of ['finetune', 'neggrad+', 'scrub'] as const) await measure(`approximate: ${algorithm}`, `${mlp} (the full model)`, full.method, full.trained, { algorithm });
  } finally {
    await full.method.release();
  }
  const sisa = await sgd(mnistConfig('sisa', options.threads, epochs), createSisaMethod);
  try {
    await measure('SISA S=10 R=5', mlp, sisa.method, sisa.trained);
  } finally {
    await sisa.method.release();
  }
  const dpShape = { ...mnistConfig('full-retrain', options.threads, DP.epochs), batchSize: DP.batchSize, learningRate: DP.learningRate };
  const dpSchedule = epochsOfSlices(normalizeConfig(dpShape));
  const privacy = resolvePrivacy(
    { epsilon: DP.epsilon, delta: DP.delta, clipNorm: DP.clipNorm, accountant: 'rdp' },
    { trainingSamples: train.length, shards: 1, batchSize: DP.batchSize, epochsPerSlice: dpSchedule },
    'd9'.repeat(32),
  );
  const dpAccounted = privacyGuarantee(privacy, dpSchedule);
  const dp = await sgd({ ...dpShape, privacy }, createFullRetrainMethod);
  try {
    const dpModel = `${mlp}, DP-SGD σ ${privacy.noiseMultiplier.toFixed(3)}, q ${privacy.sampleRate.toFixed(4)}, ${dpAccounted.steps} steps, clip ${DP.clipNorm}, batch ${DP.batchSize}, lr ${DP.learningRate}, ${DP.epochs} epochs`;
    const dpGuarantee = `model (ε ${dpAccounted.epsilon.toFixed(3)}, δ ${DP.delta})-DP (${privacy.accountant})`;
    await measure('DP-SGD, full retraining', dpModel, dp.method, dp.trained, undefined, dpGuarantee);
  } finally {
    await dp.method.release();
  }

  const loadAfter = loadAverage();

  printTable(
    `methods: forgetting on MNIST (the mnist package's 10,000 digits: 9,000 trained, ${mislabeledCount} of them mislabeled; 1,000 held out); SGD models ${epochs} epochs, batch 8, lr 0.3, threads ${options.threads}; membership attack (LiRA) with ${shadowModels} shadow models, TPR at 1% FPR of the ${mislabeledCount} mislabeled digits vs the held-out ones; load average ${loadBefore} -> ${loadAfter}`,
    ['method', 'model', 'forget 1 digit (wall / cpu)', 'retrain from scratch = training (wall / cpu)', 'speed-up (wall)', 'test accuracy', `TPR@1%FPR before -> after (reference) forgetting ${mislabeledCount}`, 'guarantee of that forget'],
    rows.map((r) => {
      const m = r.many.membership;
      const tpr = m.skipped ? `skipped: ${m.skipped.reason}` : `${f(m.tprAt1pctFpr!.before)} -> ${f(m.tprAt1pctFpr!.after)} (${f(m.tprAt1pctFpr!.reference)})`;
      return [
        r.name,
        r.model,
        `${s(r.one.seconds)} / ${s(r.one.cpu)}`,
        `${s(r.trainSeconds)} / ${s(r.trainCpu)}`,
        `${(r.trainSeconds / r.one.seconds).toFixed(1)}x`,
        f(r.testAccuracy),
        tpr,
        guaranteeCell(r.many.outcome.event.guarantee) + (r.modelGuarantee ? `; ${r.modelGuarantee}` : ''),
      ];
    }),
  );

  printCertified(certified.run);
}

/** A span of a certified run: wall and CPU seconds. */
type Span = { wall: number; cpu: number };
const span = (timed: Timed<void>): Span => ({ wall: timed.seconds, cpu: timed.cpu });
const phasesOf = (forget: ForgetSummary, names: string[]): Span => ({
  wall: names.reduce((a, name) => a + (forget.phases[name] ?? 0), 0),
  cpu: names.reduce((a, name) => a + (forget.cpuPhases[name] ?? 0), 0),
});

/** What the certified tables show, each against the baseline (retraining as it publishes) of the same run. */
const CERTIFIED_SPANS: { what: string; of: (run: CertifiedRun) => Span; against?: boolean }[] = [
  { what: 'retraining from scratch as it publishes (L-BFGS to 1e-6 per sample, evaluation, ONNX; no Hessians): the baseline', of: (r) => span(r.bare) },
  { what: "the certified model's training (returns once published)", of: (r) => span(r.trained), against: false },
  { what: 'then its preparation in the background: Hessians, inverses, the removal rehearsed and the step run 4 times to compile them, the shifted batch tree', of: (r) => span(r.prepared), against: false },
  { what: "first removal (the process's first): the Newton step and its residual bound", of: (r) => phasesOf(r.first.outcome, ['newton']) },
  { what: "first removal: the step's version (its batch root, stored state)", of: (r) => phasesOf(r.first.outcome, ['version']) },
  { what: 'first removal: the whole forget to the published version (checks, step, version, ONNX, manifest, events; evidence after)', of: (r) => phasesOf(r.first.outcome, TO_PUBLISHED) },
  { what: 'first removal: the forget call (publishForget), as its caller waits for the published version', of: (r) => span(r.first.call) },
  { what: "then the new version's preparation in the background (Hessians, inverses, rehearsal and warm-up, shifted batch tree)", of: (r) => span(r.first.prepared), against: false },
  { what: 'then the first removal\'s evidence (recordEvidence: both versions evaluated, EVIDENCE_RECORDED)', of: (r) => span(r.first.evidence), against: false },
  { what: 'the next removal (another digit, from that version): the Newton step and its bound', of: (r) => phasesOf(r.next.outcome, ['newton']) },
  { what: 'the next removal: the whole forget to its published version', of: (r) => phasesOf(r.next.outcome, TO_PUBLISHED) },
  { what: 'the next removal: the forget call (publishForget), as its caller waits for the published version', of: (r) => span(r.next.call) },
];

/** One run's certified tables: its spans against its baseline, and its accuracy against the noiseless model. */
function printCertified(run: CertifiedRun): void {
  const ratio = (base: number, x: number) => `${(base / x).toFixed(0)}x`;
  printTable(
    `methods: certified removal of one digit, phase by phase, against retraining from scratch in the same run (wall / CPU seconds; CPU: the process, every thread); load average ${run.load.before} -> ${run.load.after}`,
    ['what', 'wall / cpu', 'retraining / this (wall / cpu)'],
    [
      ...CERTIFIED_SPANS.map(({ what, of, against }) => {
        const x = of(run);
        return [what, `${s(x.wall)} / ${s(x.cpu)}`, against === false ? '' : `${ratio(run.bare.seconds, x.wall)} / ${ratio(run.bare.cpu, x.cpu)}`];
      }),
      ['guarantee of the first removal; of the next', `${guaranteeOf(run.first.outcome)}; ${guaranteeOf(run.next.outcome)}`, ''],
      ["first removal's ONNX SHA-256", run.first.outcome.onnxSha256, ''],
    ],
  );
  printAccuracy(run);
}

function printAccuracy(run: CertifiedRun): void {
  const accuracyOf = run.first.outcome.testAccuracy;
  printTable("methods: certified removal's accuracy against the same L2 logistic regression without the noise (same solver, same projection)", ['model', 'test accuracy', 'training (wall / cpu)'], [
    [`certified, (ε, δ) = (${CERTIFIED.epsilon}, ${CERTIFIED.delta}), λ = ${CERTIFIED.lambda}, σ = ${CERTIFIED.sigma}, after the first removal`, f(accuracyOf), `${s(run.bare.seconds)} / ${s(run.bare.cpu)}`],
    [`L2 logistic regression, λ = ${CERTIFIED.lambda}, no noise (baseline)`, f(run.plainAccuracy), `${s(run.plain.seconds)} / ${s(run.plain.cpu)}`],
    ['difference (points)', ((accuracyOf - run.plainAccuracy) * 100).toFixed(2), ''],
  ]);
}

function guaranteeOf(forget: ForgetSummary): string {
  return forget.guarantee ? describeGuarantee(forget.guarantee) : 'none';
}

/** `--certified-runs N`: N fresh processes, one certified run each (certifiedChild), then each run and the 95% intervals. */
async function certifiedRuns(count: number): Promise<void> {
  const runs: CertifiedRun[] = [];
  for (let i = 0; i < count; i++) {
    const child = fork(__filename, ['--certified-child'], { execArgv: ['-r', join(__dirname, '..', 'scripts', 'register.js')] });
    runs.push(
      await new Promise<CertifiedRun>((resolve, reject) => {
        child.once('message', (m) => resolve(m as CertifiedRun));
        child.once('exit', (code) => reject(new Error(`certified run ${i + 1} exited with ${code} before reporting`)));
      }),
    );
    process.stderr.write(`methods bench: certified run ${i + 1} of ${count} done (load ${runs[i].load.before} -> ${runs[i].load.after})\n`);
  }
  try {
    printCertifiedRuns(runs);
  } catch (error) {
    process.stderr.write(`methods bench: the runs as measured: ${JSON.stringify(runs)}\n`);
    throw error;
  }
}

function printCertifiedRuns(runs: CertifiedRun[]): void {
  const count = runs.length;
  const timed = CERTIFIED_SPANS.filter((x) => x.against !== false);
  printTable(
    `methods: certified removal, ${count} runs, each in a fresh process (CPU seconds; retraining / this in the same run)`,
    ['run', 'load average', ...timed.map((x) => x.what)],
    runs.map((run, i) => [
      String(i + 1),
      `${run.load.before} -> ${run.load.after}`,
      ...timed.map(({ of }) => {
        const x = of(run);
        return `${s(x.cpu)} (${(run.bare.cpu / x.cpu).toFixed(0)}x)`;
      }),
    ]),
  );
  const interval = (values: number[], digits: number, unit = '') => formatInterval(meanInterval(values), digits, unit);
  printTable(
    `methods: certified removal over ${count} runs, mean [95% interval] (Student's t over the runs)`,
    ['what', 'wall', 'cpu', 'retraining / this, wall', 'retraining / this, cpu', 'runs at or past 100x (wall / cpu)'],
    CERTIFIED_SPANS.map(({ what, of, against }) => {
      const spans = runs.map(of);
      const wallRatios = runs.map((r, i) => r.bare.seconds / spans[i].wall);
      const cpuRatios = runs.map((r, i) => r.bare.cpu / spans[i].cpu);
      const ms = (v: number[]) => interval(v.map((x) => x * 1000), 0, ' ms');
      return [
        what,
        ms(spans.map((x) => x.wall)),
        ms(spans.map((x) => x.cpu)),
        against === false ? '' : interval(wallRatios, 0, 'x'),
        against === false ? '' : interval(cpuRatios, 0, 'x'),
        against === false ? '' : `${wallRatios.filter((x) => x >= 100).length} / ${cpuRatios.filter((x) => x >= 100).length} of ${count}`,
      ];
    }),
  );
  const shas = new Set(runs.map((r) => r.first.outcome.onnxSha256));
  process.stdout.write(`first removal's ONNX SHA-256 in every run: ${[...shas].join(', ')}; guarantee: ${guaranteeOf(runs[0].first.outcome)}\n`);
  printAccuracy(runs[0]);
}

/** A child of certifiedRuns: one certified run, sent to the parent; exits without waiting for the last preparation. */
async function certifiedChild(): Promise<void> {
  const { run } = await certifiedOnce(benchData(100));
  await new Promise<void>((resolve, reject) => process.send!(run, (error: Error | null) => (error ? reject(error) : resolve())));
  process.exit(0);
}

function accuracy(predicted: number[], rows: readonly LabeledExample[]): number {
  return predicted.filter((label, i) => label === rows[i].label).length / rows.length;
}

function guaranteeCell(guarantee: UnlearnGuarantee | undefined): string {
  if (!guarantee || guarantee.kind === 'exact') return 'exact';
  if (guarantee.kind === 'approximate') return `approximate (${guarantee.steps} steps)`;
  return `certified (ε ${guarantee.epsilon}, δ ${guarantee.delta}), ${guarantee.retrained ? 'retrained: past the budget' : `budget ${f(guarantee.budgetUsed)} of ${f(guarantee.budget)}`}`;
}

function f(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(4);
}

function s(seconds: number): string {
  return Number.isNaN(seconds) ? 'n/a' : seconds < 1 ? `${(seconds * 1000).toFixed(0)} ms` : `${seconds.toFixed(2)} s`;
}

export const bench: Bench<typeof flags> = {
  summary: 'the unlearning methods on MNIST: forget time, test accuracy, membership TPR at 1% FPR before/after, guarantee; beside retraining',
  flags,
  run,
};

if (require.main === module && process.argv[2] === '--certified-child') {
  certifiedChild().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else if (require.main === module) runBenchFile('bench/methods.bench.ts', bench);
