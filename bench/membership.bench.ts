// libs/unlearning: the membership attack (LiRA per forgotten example, as U-LiRA) on MNIST (the `mnist` package's
// 10,000 digits, 80/20 split: 8,000 to train on, 2,000 held out), SISA S=10 R=5 with the unlearning bench's
// hyperparameters. One data subject (3 digits) is forgotten; the attack reads the model before, after, and a
// reference retrained under another seed, on the ensemble and on the shard model that held each sample, with
// canaries injected into (and forgotten from) the evaluation's own copies to show its power on "before".
// Printed beside it, measured in the same run: the old population loss-threshold AUC (forgotten vs test), the
// chance levels, the training of the model itself (the baseline of the attack's cost), and the forget.
// Run: npm run bench -- membership [--shadow-models 16] [--canaries 1000] [--threads 1] [--quick]
import type { MembershipAttackFigures, MembershipEvidence } from '@lethe/events';
import { MemoryCheckpointStore, compactFeatures, configureHeapForTraining, createSisaMethod, loadMnist, splitTrainTest } from '@lethe/unlearning';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';
import { commit, loadAverage, mnistConfig, timeAsync } from './unlearning.bench';

const flags = defineFlags({
  shadowModels: { type: 'integer', min: 4, help: 'shadow models (4..256; default 16, 8 with --quick)' },
  canaries: { type: 'integer', min: 0, help: 'canaries injected and as many kept out (0 or 100..1000; default 1000, 200 with --quick)' },
  epochs: { type: 'integer', min: 1, default: 10, help: 'epochs of the model (and of every shadow model)' },
  threads: { type: 'integer', min: 1, default: 1, help: 'onnxruntime intra-op threads of training' },
  quick: { type: 'boolean', help: 'fewer shadow models and canaries' },
});

/** The forgotten subject's digits: the first training digit of classes 1, 4 and 7. */
const SUBJECT_DIGITS = [1, 4, 7];

export async function run(options: BenchOptions<typeof flags>): Promise<void> {
  const shadowModels = options.shadowModels ?? (options.quick ? 8 : 16);
  const canaries = options.canaries ?? (options.quick ? 200 : 1000);
  configureHeapForTraining();
  const split = splitTrainTest(loadMnist(), { seed: 'bench-split', testFraction: 0.2 });
  const train = commit(split.train);
  const test = compactFeatures(split.test);
  const config = mnistConfig('sisa', options.threads, options.epochs);
  const subject = SUBJECT_DIGITS.map((digit) => train.find((sample) => sample.label === digit)!.externalId);
  const loadBefore = loadAverage();
  const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
  try {
    const trained = await timeAsync(() => sisa.train({ modelId: 'membership-bench', config, samples: train, testSet: test }));
    const forgot = await timeAsync(() =>
      sisa.forget(trained.result, { requestIds: ['subject'], externalIds: subject, testSet: test, compareWithRetrain: true }),
    );
    const before = trained.result;
    const after = forgot.result.model;
    // Without canaries the attack has only the 3 forgotten digits as members: too few for its intervals.
    const alone = await sisa.measureMembership(before, after, { testSet: test, options: { shadowModels } });
    const measured = await timeAsync(() => sisa.measureMembership(before, after, { testSet: test, options: { shadowModels, canaries } }));
    const evidence = measured.result;
    if (evidence.skipped) throw new Error(`the attack was skipped: ${evidence.skipped.reason}`);
    const loadAfter = loadAverage();

    printTable(
      `libs/unlearning: membership attack on MNIST (the mnist package's 10,000 digits, 8,000 trained, 2,000 held out), SISA S=10 R=5, MLP 784-128-10, ${options.epochs} epochs, batch 8, lr 0.3, threads=${options.threads}; load average ${loadBefore} -> ${loadAfter}`,
      ['attack', 'model', 'TPR at 1% FPR [95% CI]', 'TPR at 0.1% FPR [95% CI]', 'AUC [95% CI]', 'forgotten subject flagged at 1% FPR of held-out'],
      [...figureRows('ensemble', evidence as MembershipAttackFigures, evidence), ...figureRows('per member', evidence.perMember!, evidence), chanceRow(evidence)],
    );
    const ev = forgot.result.evidence;
    printTable(
      'libs/unlearning: beside it, the old population loss-threshold AUC (forgotten vs the 2,000 test digits; reference: same seed)',
      ['model', 'loss-threshold AUC', 'note'],
      [
        ['before', f(ev.before.membershipAuc), '3 forgotten digits vs 2,000 test digits'],
        ['after', f(ev.after.membershipAuc), ''],
        ['reference (retrained, same seed)', f(ev.reference?.membershipAuc), 'equal to after by construction (same bytes)'],
      ],
    );
    printTable('libs/unlearning: membership attack setup and cost (the model\'s own training is the baseline)', ['what', 'value'], [
      ['members compared', `${evidence.members.canaries} injected canaries (+ ${evidence.members.forgotten} forgotten digits read against the held-out ones)`],
      ['non-members compared', `${evidence.nonMembers.canaries} canaries kept out (+ ${evidence.nonMembers.heldOut} held-out digits)`],
      ['shadow models', `${evidence.shadowModels} (${evidence.variance} variance), each trained on the 7,997 retained digits + half of the candidates`],
      ['bootstrap replicates per interval', String(evidence.bootstrap)],
      ['evaluated models', `before/after: evaluation-only copies with canaries (after = published version: ${evidence.models!.afterIsPublished}); reference: another seed`],
      ['without canaries', alone.skipped ? `skipped: ${alone.skipped.reason}` : 'ran'],
      ['training the model (baseline)', `${s(trained.seconds)} (cpu ${s(trained.cpu)})`],
      ['forgetting the subject (with the same-seed reference)', `${s(forgot.seconds)} (cpu ${s(forgot.cpu)}), retrained ${forgot.result.affected.map((a) => `shard ${a.shard} from slice ${a.fromSlice}`).join(', ')}`],
      [
        'membership evaluation',
        `${s(measured.seconds)} (cpu ${s(measured.cpu)}) = ${(measured.seconds / trained.seconds).toFixed(1)}x the model's training, for ${shadowModels + 3} trainings (shadows, reference, 2 copies)`,
      ],
    ]);
  } finally {
    await sisa.release();
  }
}

function figureRows(name: string, figures: MembershipAttackFigures, evidence: MembershipEvidence): string[][] {
  return (['before', 'after', 'reference'] as const).map((side) => [
    name,
    side === 'reference' ? 'reference (retrained, another seed)' : side,
    withInterval(figures.tprAt1pctFpr[side], figures.ci95.tprAt1pctFpr[side]),
    withInterval(figures.tprAt01pctFpr[side], figures.ci95.tprAt01pctFpr[side]),
    withInterval(figures.auc[side], figures.ci95.auc[side]),
    figures.forgottenAt1pctFpr ? `${Math.round(figures.forgottenAt1pctFpr[side] * evidence.members.forgotten)} of ${evidence.members.forgotten}` : 'n/a',
  ]);
}

function chanceRow(evidence: MembershipEvidence): string[] {
  const chance = evidence.chance!;
  return ['chance', 'a model that learned nothing', f(chance.tprAt1pctFpr), f(chance.tprAt01pctFpr), f(chance.auc), '-'];
}

function withInterval(value: number | null, interval: [number, number] | null): string {
  return value === null ? 'n/a' : `${f(value)} [${f(interval![0])}, ${f(interval![1])}]`;
}

function f(value: number | null | undefined): string {
  return value === null || value === undefined ? 'n/a' : value.toFixed(4);
}

function s(seconds: number): string {
  return `${seconds.toFixed(1)} s`;
}

export const bench: Bench<typeof flags> = {
  summary: 'the membership attack (LiRA per example) on MNIST SISA S=10 R=5 before / after a forget / a reference, with canaries, vs the old loss-threshold AUC',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/membership.bench.ts', bench);
