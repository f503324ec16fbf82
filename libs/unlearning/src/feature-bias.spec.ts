/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { scanBiasByInfluence } from './bias-scan';
import { MemoryCheckpointStore } from './checkpoint-store';
import { normalizeConfig, TrainingConfigInput } from './config';
import { UnlearningError } from './errors';
import { computeFairness, measureFairness } from './fairness';
import { computePermutationImportance } from './feature-importance';
import { createFullRetrainMethod } from './full-retrain';
import { TrainedModel } from './model';
import { LabeledExample, Sample } from './samples';
import { loadVerifiedModel } from './serve';
import { createSisaMethod } from './sisa';
import { createCertifiedMethod } from './certified/certified-method';
import { resolveCertified } from './certified/certified-settings';
import { MemoryLedgerSink } from './events';
import { validateEvent } from '@lethe/events';
import { commitExamples, plantedBiasSet as syntheticSet } from './testing/factories';

const base: TrainingConfigInput = {
  method: 'sisa',
  model: 'logistic-regression',
  numFeatures: 5,
  numClasses: 2,
  shards: 2,
  slices: 2,
  epochs: 6,
  batchSize: 16,
  learningRate: 0.1,
  seed: 'feature-bias',
};

async function train(config: TrainingConfigInput, samples: readonly Sample[]): Promise<TrainedModel> {
  const method = config.method === 'sisa' ? createSisaMethod({ store: new MemoryCheckpointStore() }) : createFullRetrainMethod({ store: new MemoryCheckpointStore() });
  try {
    return await method.train({ modelId: 'm', config, samples });
  } finally {
    await method.release();
  }
}

/** The raw output bytes (probabilities and labels) of a published file on `rows`. */
async function outputBytes(model: TrainedModel, rows: number[][]): Promise<Buffer> {
  const served = await loadVerifiedModel(model.onnx, model.onnxSha256);
  try {
    const out = await served.predict(rows);
    return Buffer.concat([Buffer.from(out.probabilities.buffer, out.probabilities.byteOffset, out.probabilities.byteLength), Buffer.from(JSON.stringify(out.labels))]);
  } finally {
    await served.release();
  }
}

describe('feature-level unlearning (maskedFeatures)', () => {
  const { rows } = syntheticSet(600, 'features', false);
  const samples = commitExamples(rows);
  const probe = syntheticSet(200, 'probe', false).rows.map((r) => Array.from(r.features));
  // The same probe rows with columns 1 and 2 replaced by large values of either sign (and -0).
  const changed = probe.map((row, i) => row.map((v, j) => (j === 1 ? (i % 3 === 0 ? -0 : -1e30 * (i + 1)) : j === 2 ? 3e38 : v)));

  it.each(['sisa', 'full-retrain'] as const)('%s: changing the masked columns changes no output bit; the unmasked model is the positive control', async (method) => {
    const config = method === 'sisa' ? base : { ...base, shards: 1, slices: 1 };
    const masked = await train({ ...config, method, maskedFeatures: [2, 1] }, samples);
    const plain = await train({ ...config, method }, samples);
    expect(masked.config.maskedFeatures).toEqual([1, 2]);
    expect(await outputBytes(masked, changed)).toEqual(await outputBytes(masked, probe));
    expect(await outputBytes(plain, changed)).not.toEqual(await outputBytes(plain, probe));
    // Permutation importance: exactly 0 for the masked columns, positive before (column 1 carries the label).
    const test = syntheticSet(300, 'test', false).rows;
    const after = await computePermutationImportance(masked.onnx, masked.onnxSha256, test, [1, 2], 'perm');
    const before = await computePermutationImportance(plain.onnx, plain.onnxSha256, test, [1, 2], 'perm');
    expect(after.columns.map((c) => c.importance)).toEqual([0, 0]);
    expect(before.columns[0].importance).toBeGreaterThan(0.1);
    // Training is deterministic with the mask: the same bytes again.
    expect((await train({ ...config, method, maskedFeatures: [1, 2] }, samples)).onnxSha256).toBe(masked.onnxSha256);
  });

  it('forgetFeatures publishes the next version, byte-identical to a training with the columns masked, logging the columns and the importance before and after', async () => {
    const ledger = new MemoryLedgerSink();
    const method = createSisaMethod({ store: new MemoryCheckpointStore(), ledger });
    const test = syntheticSet(300, 'test', false).rows;
    try {
      const v1 = await method.train({ modelId: 'm', config: base, samples });
      const { model: v2, event } = await method.forgetFeatures!(v1, { requestIds: ['r1'], features: [1], testSet: test, protectedFeature: 0 });
      expect(v2.version).toBe(2);
      expect(v2.onnxSha256).toBe((await train({ ...base, maskedFeatures: [1] }, samples)).onnxSha256);
      expect(event.features).toEqual([1]);
      const evidence = event.evidence as { before: { testAccuracy: number; permutationImportance: { importance: number }[]; fairness: unknown }; after: typeof evidence.before };
      expect(evidence.before.permutationImportance[0].importance).toBeGreaterThan(0.1);
      expect(evidence.after.permutationImportance[0].importance).toBe(0);
      expect(evidence.after.testAccuracy).toBeLessThan(evidence.before.testAccuracy);
      expect(evidence.after.fairness).toBeDefined();
      for (const e of ledger.events) validateEvent(e);
      // A second request keeps the first column masked.
      const { event: third } = await method.forgetFeatures!(v2, { requestIds: ['r2'], features: [2] });
      expect(third.features).toEqual([1, 2]);
      await expect(method.forgetFeatures!(v2, { requestIds: ['r3'], features: [9] })).rejects.toThrow(/features\[0\] is 9/);
    } finally {
      await method.release();
    }
  });

  it('refuses empty, out-of-range, duplicated, non-integer or all columns, naming the field', () => {
    const bad: unknown[] = [[], [5], [-1], [1, 1], [1.5], ['1'], [0, 1, 2, 3, 4]];
    for (const maskedFeatures of bad) {
      expect(() => normalizeConfig({ ...base, maskedFeatures: maskedFeatures as number[] })).toThrow(UnlearningError);
      expect(() => normalizeConfig({ ...base, maskedFeatures: maskedFeatures as number[] })).toThrow(/maskedFeatures/);
    }
    expect(() => normalizeConfig({ ...base, method: 'certified', maskedFeatures: [1] } as TrainingConfigInput)).toThrow(/maskedFeatures/);
  });
});

describe('fairness figures', () => {
  it('per-group accuracy, demographic parity and equalized odds differences by hand', () => {
    const rows: LabeledExample[] = [
      { externalId: 'a', features: [0], label: 1 },
      { externalId: 'b', features: [0], label: 0 },
      { externalId: 'c', features: [1], label: 1 },
      { externalId: 'd', features: [1], label: 0 },
    ];
    // group 0: predicts 1, 0 (both right); group 1: predicts 0, 0 (TPR 0).
    const figures = computeFairness(rows, [1, 0, 0, 0], 0, 2);
    expect(figures.groups).toEqual([
      { group: 0, count: 2, accuracy: 1 },
      { group: 1, count: 2, accuracy: 0.5 },
    ]);
    expect(figures.accuracyGap).toBe(0.5);
    expect(figures.demographicParityDifference).toBe(0.5);
    expect(figures.equalizedOddsDifference).toBe(1);
  });
});

describe('fairness figures in every version', () => {
  const { rows, planted } = syntheticSet(400, 'every', true);
  const samples = commitExamples(rows);
  const test = syntheticSet(200, 'every-test', false).rows;
  const forgotten = [...planted].slice(0, 5);

  it.each(['sisa approximate', 'certified'] as const)('%s: MODEL_PUBLISHED.metrics.fairness and UNLEARN_COMPLETED.evidence.fairness before and after', async (kind) => {
    const ledger = new MemoryLedgerSink();
    const certified = kind === 'certified';
    const method = certified ? createCertifiedMethod({ store: new MemoryCheckpointStore(), ledger }) : createSisaMethod({ store: new MemoryCheckpointStore(), ledger });
    const config: TrainingConfigInput = certified
      ? { method: 'certified', model: 'logistic-regression', numFeatures: 5, numClasses: 2, seed: 'every', certified: resolveCertified({ epsilon: 1, delta: 1e-4, lambda: 1e-2, sigma: 1 }, samples.length, 'c3'.repeat(32)) }
      : base;
    try {
      const v1 = await method.train({ modelId: 'm', config, samples, testSet: test, protectedFeature: 0 });
      expect(v1.metrics.fairness).toMatchObject({ protectedFeature: 0, groups: [expect.objectContaining({ group: 0 }), expect.objectContaining({ group: 1 })] });
      const outcome = await method.forget(v1, {
        requestIds: ['r1'],
        externalIds: forgotten,
        testSet: test,
        protectedFeature: 0,
        ...(certified ? {} : { approximate: { algorithm: 'finetune' as const } }),
      });
      expect(outcome.event.evidence.fairness).toEqual({ before: v1.metrics.fairness, after: outcome.model.metrics.fairness });
      for (const e of ledger.events) validateEvent(e);
    } finally {
      await method.release();
    }
  });
});

describe('bias identification by influence functions', () => {
  it('with a planted bias, the top candidates hold most of the planted samples; forgetting them shrinks the gaps', async () => {
    const { rows, planted } = syntheticSet(1600, 'planted', true);
    const holdout = syntheticSet(800, 'holdout', false).rows;
    const samples = commitExamples(rows);
    const config = { ...base, shards: 1, slices: 1, method: 'full-retrain' as const, epochs: 8 };
    const biased = await train(config, samples);
    const scan = scanBiasByInfluence(biased, holdout, 0, planted.size);
    expect(scan.method).toBe('influence-functions');
    expect(scan.disadvantagedGroup).toBe(1);
    const hits = scan.candidates.filter((c) => planted.has(c.externalId)).length;
    const fraction = hits / planted.size;
    console.log(`planted bias: ${hits} of ${planted.size} planted samples in the top ${planted.size} candidates (${(fraction * 100).toFixed(1)}%)`);
    expect(fraction).toBeGreaterThan(0.5);
    // Positive control of the whole chain: forgetting the candidates reduces the measured gaps.
    const forgotten = new Set(scan.candidates.map((c) => c.externalId));
    const repaired = await train(config, samples.filter((s) => !forgotten.has(s.externalId)));
    const before = await measureFairness(biased.onnx, biased.onnxSha256, holdout, 0);
    const after = await measureFairness(repaired.onnx, repaired.onnxSha256, holdout, 0);
    console.log(`equalized odds difference ${before.equalizedOddsDifference.toFixed(3)} -> ${after.equalizedOddsDifference.toFixed(3)}, ` +
      `demographic parity difference ${before.demographicParityDifference.toFixed(3)} -> ${after.demographicParityDifference.toFixed(3)}`);
    expect(after.equalizedOddsDifference).toBeLessThan(before.equalizedOddsDifference);
  });

  it('on a SISA ensemble of logistic regressions, each sample is scored in its own member', async () => {
    const { rows, planted } = syntheticSet(1600, 'planted', true);
    const holdout = syntheticSet(800, 'holdout', false).rows;
    const biased = await train({ ...base, epochs: 8 }, commitExamples(rows));
    const scan = scanBiasByInfluence(biased, holdout, 0, planted.size);
    const fraction = scan.candidates.filter((c) => planted.has(c.externalId)).length / planted.size;
    console.log(`planted bias, SISA 2x2: ${(fraction * 100).toFixed(1)}% of the planted samples in the top ${planted.size}`);
    expect(fraction).toBeGreaterThan(0.5);
  });

  it('refuses an MLP and a protected column out of range', async () => {
    const { rows } = syntheticSet(200, 'small', false);
    const model = await train({ ...base, shards: 1, slices: 1, method: 'full-retrain' }, commitExamples(rows));
    expect(() => scanBiasByInfluence(model, rows, 5)).toThrow(/protectedFeature/);
    const mlp = await train({ ...base, shards: 1, slices: 1, method: 'full-retrain', model: 'mlp', hiddenLayers: [4] }, commitExamples(rows));
    expect(() => scanBiasByInfluence(mlp, rows, 0)).toThrow(/logistic regression/);
  });
});
