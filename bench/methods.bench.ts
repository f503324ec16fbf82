// The unlearning methods side by side on MNIST (the `mnist` package's 10,000 digits, 90/10 split: 9,000 to train on,
// 1,000 held out), in one run: full retraining and SISA (exact), approximate unlearning (finetune, NegGrad+, SCRUB)
// of the full model, and certified removal. Per method: the time to forget one digit, test accuracy, the
// membership attack's TPR at 1% FPR before and after forgetting 100 digits the training set holds with wrong
// labels (memorised, so the attack has something to find), and the guarantee the forget records. Baselines in the
// same run: each model's training (retraining from scratch is what forgetting is compared with), and for certified
// removal the same L2 logistic regression without the noise, and its training without the Hessian factors. A
// DP-SGD model (the same MLP, (1, 1e-5)-DP by the RDP accountant, the privacy bench's schedule for ε = 1) forgets
// by its exact method, full retraining with DP-SGD.
// Run: npm run bench -- methods [--quick] [--shadow-models 8] [--mislabeled 100] [--epochs 10] [--threads 1]
import type { MembershipEvidence, UnlearnGuarantee } from '@lethe/events';
import { describeGuarantee } from '@lethe/events';
import {
  MemoryCheckpointStore,
  compactFeatures,
  configureHeapForTraining,
  createCertifiedMethod,
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
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';
import { commit, loadAverage, mnistConfig, timeAsync } from './unlearning.bench';

const flags = defineFlags({
  quick: { type: 'boolean', help: '4 shadow models, 3 epochs, 50 mislabeled digits' },
  shadowModels: { type: 'integer', min: 4, help: 'shadow models of the membership attack (default 8, 4 with --quick)' },
  mislabeled: { type: 'integer', min: 20, help: 'training digits given a wrong label, then forgotten (default 100, 50 with --quick)' },
  epochs: { type: 'integer', min: 1, help: 'epochs of the SGD models (default 10, 3 with --quick)' },
  threads: { type: 'integer', min: 1, default: 1, help: 'onnxruntime intra-op threads of training' },
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
  /** Certified removal only: the next removal (another digit) from the version the first one published, its Hessians ready. */
  next?: ForgetOutcome;
  /** Forgetting the mislabeled digits: the new version, its guarantee and the attack before / after. */
  many: { outcome: ForgetOutcome; membership: MembershipEvidence };
  testAccuracy: number;
  /** What the model itself guarantees beside the forget's guarantee (DP-SGD's ε, δ). */
  modelGuarantee?: string;
}

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const quick = options.quick;
  const shadowModels = options.shadowModels ?? (quick ? 4 : 8);
  const mislabeledCount = options.mislabeled ?? (quick ? 50 : 100);
  const epochs = options.epochs ?? (quick ? 3 : 10);
  configureHeapForTraining();
  const split = splitTrainTest(loadMnist(), { seed: 'bench-split', testFraction: 0.1 });
  // Every 90th training digit (a spread over the classes) is given the next class's label: memorised outliers.
  const mislabeled = new Set(split.train.filter((_, i) => i % 90 === 45).slice(0, mislabeledCount).map((e) => e.externalId));
  const train = commit(split.train.map((e) => (mislabeled.has(e.externalId) ? { ...e, label: (e.label + 1) % 10 } : e)));
  const test = compactFeatures(split.test);
  const kept = train.filter((s) => !mislabeled.has(s.externalId));
  const one = [kept[0].externalId];
  const nextOne = [kept[1].externalId];
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
    measureNext = false,
  ): Promise<void> => {
    const forgetOne = await timeAsync(() => method.forget(trained.result, { requestIds: ['one'], externalIds: one, testSet: test, approximate }));
    // The next removal runs before anything else evicts the first one's version and its prepared Hessians.
    const next = measureNext ? await method.forget(forgetOne.result.model, { requestIds: ['next'], externalIds: nextOne, testSet: test }) : undefined;
    const forgetMany = await method.forget(trained.result, { requestIds: ['many'], externalIds: many, testSet: test, approximate });
    const membership = await method.measureMembership(trained.result, forgetMany.model, { testSet: test, options: { shadowModels, bootstrap: 200 } });
    rows.push({
      name,
      model,
      trainSeconds: trained.seconds,
      trainCpu: trained.cpu,
      one: { seconds: forgetOne.seconds, cpu: forgetOne.cpu, outcome: forgetOne.result },
      next,
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
  const certifiedConfig: TrainingConfigInput = {
    method: 'certified',
    model: 'logistic-regression',
    numFeatures: 784,
    numClasses: 10,
    seed: 'bench-seed',
    certified: resolveCertified(CERTIFIED, train.length, 'be'.repeat(32)),
  };
  const certified = createCertifiedMethod({ store: new MemoryCheckpointStore(), log: () => undefined });
  const certifiedTrained = await timeAsync(() => certified.train({ modelId: 'methods-bench', config: certifiedConfig, samples: train, testSet: test }));
  try {
    await measure('certified removal', 'one-vs-rest logistic regression, L-BFGS', certified, certifiedTrained, undefined, undefined, true);
  } finally {
    await certified.release();
  }
  // Certified removal's baselines: its training without the Hessian factors (a retraining that only publishes),
  // and the same L2 logistic regression without the noise (the accuracy it is compared with).
  const withoutFactors = createCertifiedMethod({ store: new MemoryCheckpointStore(), log: () => undefined }, { prepareOperators: false });
  const bare = await timeAsync(() => withoutFactors.train({ modelId: 'methods-bench', config: certifiedConfig, samples: train, testSet: test }));
  await withoutFactors.release();
  const plain = await timeAsync(() => fitOneVsRest(train, 784, 10, CERTIFIED.lambda));
  const plainAccuracy = accuracy(predictOneVsRest(plain.result, test, 784, 10), test);
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

  const c = rows.find((r) => r.name === 'certified removal')!;
  const phases = c.one.outcome.timings.phases;
  const cpuPhases = c.one.outcome.timings.cpuPhases ?? {};
  const cg = c.one.outcome.event.guarantee as Extract<UnlearnGuarantee, { kind: 'certified' }>;
  // A phase or span against the baseline (the retraining that only publishes), in wall and CPU seconds.
  const against = (what: string, wall: number, cpu: number): string[] => [what, `${s(wall)} / ${s(cpu)}`, `${(bare.seconds / wall).toFixed(0)}x / ${(bare.cpu / cpu).toFixed(0)}x`];
  const sum = (of: { [phase: string]: number }, names: string[]) => names.reduce((a, name) => a + (of[name] ?? 0), 0);
  const toPublished = ['prepare', 'evaluateBefore', 'operators', 'newton', 'version', 'publish', 'ledger'];
  const nextRemovalRows = (next: ForgetOutcome): string[][] => {
    const { phases: p, cpuPhases: cpu = {} } = next.timings;
    const what = 'the next removal (another digit, from the version above, its Hessians prepared after that publication)';
    if (next.event.guarantee?.kind === 'certified' && next.event.guarantee.retrained) return [[`${what}: past the budget, retrained`, s(p.retrain ?? NaN), '']];
    return [against(`${what}: the Newton step and its bound`, p.newton ?? NaN, cpu.newton ?? NaN), against(`${what}: the whole forget to its published version`, sum(p, toPublished), sum(cpu, toPublished))];
  };
  printTable(
    'methods: certified removal of one digit, phase by phase, against retraining from scratch in the same run (wall / CPU seconds; CPU: the process, every thread)',
    ['what', 'wall / cpu', 'retraining / this (wall / cpu)'],
    [
      [`retraining from scratch: L-BFGS to 1e-6 per sample, evaluation, Hessians and inverses for the next removal`, `${s(c.trainSeconds)} / ${s(c.trainCpu)}`, ''],
      against('retraining from scratch without the Hessians (a training that only publishes; baseline)', bare.seconds, bare.cpu),
      against('the Newton step and its residual bound (Hessian inverses ready)', phases.newton ?? NaN, cpuPhases.newton ?? NaN),
      against("the step's version: its batch root and stored state", phases.version ?? NaN, cpuPhases.version ?? NaN),
      ...(c.next ? nextRemovalRows(c.next) : []),
      against('the whole forget to the published version (checks, evaluation before/after, step, ONNX, manifest, events)', sum(phases, toPublished), sum(cpuPhases, toPublished)),
      [`then the new version's Hessians and inverses for the next removal (after publication)`, `${s(phases.prepareNext ?? NaN)} / ${s(cpuPhases.prepareNext ?? NaN)}`, ''],
      ['its guarantee', describeGuarantee(cg), ''],
    ],
  );
  printTable('methods: certified removal\'s accuracy against the same L2 logistic regression without the noise (same solver, same projection)', ['model', 'test accuracy', 'training (wall / cpu)'], [
    [`certified, (ε, δ) = (${CERTIFIED.epsilon}, ${CERTIFIED.delta}), λ = ${CERTIFIED.lambda}, σ = ${CERTIFIED.sigma}`, f(c.testAccuracy), `${s(bare.seconds)} / ${s(bare.cpu)}`],
    [`L2 logistic regression, λ = ${CERTIFIED.lambda}, no noise (baseline)`, f(plainAccuracy), `${s(plain.seconds)} / ${s(plain.cpu)}`],
    ['difference (points)', ((c.testAccuracy - plainAccuracy) * 100).toFixed(2), ''],
  ]);
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

if (require.main === module) runBenchFile('bench/methods.bench.ts', bench);
