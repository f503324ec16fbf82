/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { validateEvent } from '@lethe/events';
import { MemoryCheckpointStore } from '../checkpoint-store';
import { TrainingConfigInput } from '../config';
import { loadMnist, splitTrainTest } from '../datasets';
import { EngineEvent, MemoryLedgerSink } from '../events';
import { ForgetOutcome } from '../method';
import { TrainedModel } from '../model';
import { Sample } from '../samples';
import { loadVerifiedModel } from '../serve';
import { commitExamples } from '../testing/factories';
import { createCertifiedMethod } from './certified-method';
import { CertifiedSettings, resolveCertified, residualBudget } from './certified-settings';
import { deserializeCertifiedState } from './certified-state';
import { drawObjectiveNoise, fitCertified, trainingTolerance } from './certified-training';
import { buildOvrData } from './ovr-data';
import { computeMargins, evaluateObjective } from './ovr-objective';
import { norm2 } from './packed';

// 60 digits of each class from the `mnist` package, 80% trained on.
const digits = splitTrainTest(loadMnist({ perDigit: 60 }), { seed: 'certified-split', testFraction: 0.2 });
const train = commitExamples(digits.train);
const NOISE_SEED = 'c3'.repeat(32);
const request = { epsilon: 1, delta: 1e-4, lambda: 1e-2, sigma: 1 };

function certifiedConfig(settings: Partial<CertifiedSettings> = {}): TrainingConfigInput {
  return {
    method: 'certified',
    model: 'logistic-regression',
    numFeatures: 784,
    numClasses: 10,
    seed: 'certified-seed',
    certified: { ...resolveCertified(request, train.length, NOISE_SEED), ...settings },
  };
}

function without(samples: readonly Sample[], ids: readonly string[]): Sample[] {
  const set = new Set(ids);
  return samples.filter((s) => !set.has(s.externalId));
}

/** The float64 weights a version stored. */
async function weightsOf(store: MemoryCheckpointStore, model: TrainedModel): Promise<Float64Array> {
  const bytes = (await store.get(model.shards[0].slices[0].checkpoint)) as Uint8Array;
  return deserializeCertifiedState(bytes, 784, 10).w;
}

/** ||gradient of L(.; samples)|| at w, with the model's noise (sum form). */
function gradientAt(config: TrainingConfigInput, samples: readonly Sample[], w: Float64Array): Float64Array {
  const data = buildOvrData(samples, 784, 10);
  const settings = config.certified as CertifiedSettings;
  const gradient = new Float64Array(w.length);
  evaluateObjective({ data, lambda: settings.lambda, noise: drawObjectiveNoise(settings, 784, 10) }, w, gradient, new Float64Array(data.n * 10));
  return gradient;
}

async function trainFromScratch(config: TrainingConfigInput, samples: readonly Sample[], version = 1): Promise<TrainedModel> {
  const method = createCertifiedMethod({ store: new MemoryCheckpointStore() });
  try {
    return await method.train({ modelId: 'certified-model', config, samples, version });
  } finally {
    await method.release();
  }
}

describe('certified removal', () => {
  const config = certifiedConfig();
  const store = new MemoryCheckpointStore();
  const ledger = new MemoryLedgerSink();
  const method = createCertifiedMethod({ store, ledger, log: () => undefined });
  let v1: TrainedModel;
  let first: ForgetOutcome;
  let second: ForgetOutcome;
  const firstIds = [train[7].externalId];
  const secondIds = [train[100].externalId, train[301].externalId];

  beforeAll(async () => {
    v1 = await method.train({ modelId: 'certified-model', config, samples: train, testSet: digits.test });
    first = await method.forget(v1, { requestIds: ['r1'], externalIds: firstIds, testSet: digits.test });
    second = await method.forget(first.model, { requestIds: ['r2'], externalIds: secondIds, testSet: digits.test });
  }, 300000);

  afterAll(() => method.release());

  it('trains to a gradient norm of at most 1e-6 per sample and logs the training in the canonical order', async () => {
    const w = await weightsOf(store, v1);
    expect(norm2(gradientAt(config, train, w))).toBeLessThanOrEqual(trainingTolerance(train.length));
    const types = ledger.events.map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(['BATCH_LEARNED', 'CHECKPOINT_SAVED', 'MODEL_PUBLISHED']);
    ledger.events.forEach((e) => validateEvent(e));
    expect((v1.metrics.testAccuracy as number) > 0.6).toBe(true);
  });

  it("moves the weights by one Newton step to near the minimiser a retraining finds; the step's residual is within its bound, and of its order", async () => {
    const w = await weightsOf(store, v1);
    const wMinus = await weightsOf(store, first.model);
    const remaining = without(train, firstIds);
    const settings = config.certified as CertifiedSettings;
    const exact = await fitCertified({ data: buildOvrData(remaining, 784, 10), lambda: settings.lambda, noise: drawObjectiveNoise(settings, 784, 10) });
    const distance = (a: Float64Array, b: Float64Array) => norm2(a.map((v, i) => v - b[i]));
    // The removal moved w most of the way to the retrained minimiser.
    expect(distance(wMinus, exact.w)).toBeLessThan(0.05 * distance(w, exact.w));
    // The residual the step adds to the training's (r1 - r0) is bounded by the recorded bound, and not by much.
    const r0 = gradientAt(config, train, w);
    const r1 = gradientAt(config, remaining, wMinus);
    const added = distance(r1, r0);
    const bound = (first.event.guarantee as { residualBound: number }).residualBound;
    expect(added).toBeLessThanOrEqual(bound);
    expect(added).toBeGreaterThan(bound / 100);
    process.stdout.write(`certified removal of 1 of ${train.length} digits: residual added ${added}, bound ${bound}\n`);
  });

  it('records each removal in UNLEARN_COMPLETED with its guarantee, the budget used accumulating', () => {
    const budget = residualBudget(config.certified as CertifiedSettings);
    const g1 = first.event.guarantee as { kind: string; residualBound: number; budgetUsed: number; budget: number; retrained: boolean };
    const g2 = second.event.guarantee as typeof g1;
    expect(g1).toMatchObject({ kind: 'certified', epsilon: 1, delta: 1e-4, budget, retrained: false });
    expect(g1.budgetUsed).toBeCloseTo(trainingTolerance(train.length) + g1.residualBound, 12);
    expect(g2.budgetUsed).toBeCloseTo(g1.budgetUsed + g2.residualBound, 12);
    expect(g2.budgetUsed).toBeLessThanOrEqual(budget);
    expect(first.event.affected).toEqual([]);
    // A Newton version logs its state and publication, no BATCH_LEARNED: it trained nothing.
    const ofVersion = (v: number) => ledger.events.filter((e) => 'modelVersion' in e && e.modelVersion === v).map((e) => e.type);
    expect(ofVersion(2)).toEqual(['MODEL_PUBLISHED', 'UNLEARN_COMPLETED']);
    expect(first.model.manifest.certified).toMatchObject({ trainedVersion: 1, removals: 1, step: { removed: 1 } });
  });

  it('publishes the standard logistic-regression graph: its predictions are the argmax of the one-vs-rest margins', async () => {
    const served = await loadVerifiedModel(first.model.onnx, first.model.onnxSha256);
    try {
      const rows = digits.test.map((e) => Array.from(e.features));
      const out = await served.predict(rows);
      const w = await weightsOf(store, first.model);
      const data = buildOvrData(digits.test, 784, 10);
      const margins = new Float64Array(data.n * 10);
      computeMargins(data, w, margins);
      let same = 0;
      for (let i = 0; i < data.n; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (margins[i * 10 + c] > margins[i * 10 + best]) best = c;
        if (best === out.labels[i]) same++;
        const total = Array.from(out.probabilities.subarray(i * 10, i * 10 + 10)).reduce((a, b) => a + b, 0);
        expect(total).toBeCloseTo(1, 5);
      }
      expect(same).toBe(data.n);
    } finally {
      await served.release();
    }
  });

  it('gives the same bytes whatever the upload order, and the same removal from the same model in a fresh process state', async () => {
    const shuffled = [...train].reverse();
    const again = await trainFromScratch(config, shuffled);
    expect(again.onnxSha256).toBe(v1.onnxSha256);
    expect(again.shards).toEqual(v1.shards);
    // A fresh method reads v1's state from the store and factors its Hessians again; the removed ids come in another order.
    const fresh = createCertifiedMethod({ store, log: () => undefined });
    try {
      const replayed = await fresh.forget(v1, { requestIds: ['r1'], externalIds: [...firstIds].reverse() });
      expect(replayed.model.onnxSha256).toBe(first.model.onnxSha256);
      expect(replayed.model.manifestHash).toBe(first.model.manifestHash);
      const twice = await fresh.forget(replayed.model, { requestIds: ['r2'], externalIds: [...secondIds].reverse() });
      expect(twice.model.onnxSha256).toBe(second.model.onnxSha256);
    } finally {
      await fresh.release();
    }
  });

  it("publishes a removal before its evidence (publishForget): the inline forget's bytes, nothing evaluated; recordEvidence then logs the inline forget's evidence as EVIDENCE_RECORDED", async () => {
    const laterLedger = new MemoryLedgerSink();
    const later = createCertifiedMethod({ store, ledger: laterLedger, log: () => undefined });
    try {
      const published = await later.publishForget!(v1, { requestIds: ['r1'], externalIds: firstIds, testSet: digits.test });
      expect(published.model.onnxSha256).toBe(first.model.onnxSha256);
      expect(published.model.manifestHash).toBe(first.model.manifestHash);
      expect(published.event.guarantee).toEqual(first.event.guarantee);
      // Nothing evaluated before the version is published: its metrics are the count, its UNLEARN_COMPLETED points at the evidence to come.
      expect(published.model.metrics).toEqual({ samples: train.length - 1 });
      expect(published.event.evidence).toEqual({ forgottenCount: 1, retainCount: train.length - 1, recordedIn: 'EVIDENCE_RECORDED' });
      expect(published).not.toHaveProperty('evidence');
      expect(published.timings.phases).not.toHaveProperty('evaluateBefore');
      expect(laterLedger.events.map((e) => e.type)).toEqual(['CHECKPOINT_SAVED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED']);
      // The version is served (its file loads and predicts) with its evidence not logged yet.
      const served = await loadVerifiedModel(published.model.onnx, published.model.onnxSha256);
      await served.predict([Array.from(digits.test[0].features)]);
      await served.release();
      expect(laterLedger.events.some((e) => e.type === 'EVIDENCE_RECORDED')).toBe(false);

      const recorded = await later.recordEvidence!(v1, published.model, { requestIds: ['r1'], testSet: digits.test });
      expect(laterLedger.events.map((e) => e.type)).toEqual(['CHECKPOINT_SAVED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED', 'EVIDENCE_RECORDED']);
      const event = laterLedger.events[3];
      validateEvent(event);
      expect(event).toEqual({ type: 'EVIDENCE_RECORDED', version: 1, modelId: 'certified-model', modelVersion: 2, forgetRequestIds: ['r1'], evidence: first.event.evidence });
      expect(recorded.evidence).toEqual(first.evidence);
      // Only a later version of the same model has evidence to record.
      await expect(later.recordEvidence!(published.model, v1, { requestIds: ['r1'] })).rejects.toThrow("'after' (version 1) must come after 'before' (version 2)");
      await expect(later.recordEvidence!(v1, { ...published.model, modelId: 'another' }, { requestIds: ['r1'] })).rejects.toThrow('same certified model');
    } finally {
      await later.release();
    }
  }, 900_000); // v1's Hessians and inverses made again (~10 s of CPU): minutes at load 30

  it('retrains from scratch, logged, when a removal would take the bound past the budget; the budget restarts and the bytes are a training without the samples', async () => {
    // A budget between what the first removal and what both removals use: the second one must retrain.
    const g1 = first.event.guarantee as { budgetUsed: number };
    const g2 = second.event.guarantee as { residualBound: number };
    const c = Math.sqrt(2 * Math.log(1.5 / request.delta));
    const tight = certifiedConfig({ epsilon: ((g1.budgetUsed + g2.residualBound / 2) * c) / request.sigma });
    const logs: string[] = [];
    const tightLedger = new MemoryLedgerSink();
    const tightMethod = createCertifiedMethod({ store: new MemoryCheckpointStore(), ledger: tightLedger, log: (m) => logs.push(m) });
    try {
      const t1 = await tightMethod.train({ modelId: 'certified-model', config: tight, samples: train });
      const t2 = await tightMethod.forget(t1, { requestIds: ['r1'], externalIds: firstIds });
      expect(t2.event.guarantee).toMatchObject({ retrained: false });
      const t3 = await tightMethod.forget(t2.model, { requestIds: ['r2'], externalIds: secondIds });
      const remaining = without(train, [...firstIds, ...secondIds]);
      expect(t3.event.guarantee).toMatchObject({ kind: 'certified', retrained: true, budgetUsed: trainingTolerance(remaining.length) });
      expect((t3.event.guarantee as { residualBound: number }).residualBound).toBeCloseTo(g2.residualBound, 12);
      expect(t3.event.affected).toEqual([{ shard: 0, fromSlice: 0 }]);
      expect(logs).toEqual([expect.stringMatching(/version 3: a Newton step's residual bound .* past .*: retrained from scratch without the 2 sample\(s\) \(the budget restarts\)/)]);
      const ofVersion3 = tightLedger.events.filter((e: EngineEvent) => 'modelVersion' in e && e.modelVersion === 3).map((e) => e.type);
      expect(ofVersion3).toEqual(['BATCH_LEARNED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED']);
      const scratch = await trainFromScratch(tight, remaining, 3);
      expect(t3.model.onnxSha256).toBe(scratch.onnxSha256);
      expect(t3.model.shards).toEqual(scratch.shards);
    } finally {
      await tightMethod.release();
    }
  });
});

describe('certified removal under the membership attack', () => {
  it('runs the attack on the published versions (shadow models with noise of their own) and records it in the evidence', async () => {
    const ledger = new MemoryLedgerSink();
    const method = createCertifiedMethod({ store: new MemoryCheckpointStore(), ledger, log: () => undefined });
    // 100 or more non-members: the test digits and digits 60..69 of each class, which nothing trained on.
    const heldOut = digits.test.concat(loadMnist({ perDigit: 70 }).filter((e) => Number(e.externalId.slice(-4)) >= 60));
    try {
      const v1 = await method.train({ modelId: 'certified-model', config: certifiedConfig(), samples: train, testSet: heldOut });
      const ids = train.filter((_, i) => i % 24 === 0).map((s) => s.externalId);
      const outcome = await method.forget(v1, { requestIds: ['r'], externalIds: ids, testSet: heldOut, membership: { shadowModels: 4, bootstrap: 100 } });
      const membership = outcome.evidence.membership as { skipped?: unknown; members: { forgotten: number }; tprAt1pctFpr: { before: number } };
      expect(membership.skipped).toBeUndefined();
      expect(membership.members.forgotten).toBe(ids.length);
      expect(typeof membership.tprAt1pctFpr.before).toBe('number');
      validateEvent(outcome.event);
    } finally {
      await method.release();
    }
  }, 300000);
});

describe('certified configuration', () => {
  const method = createCertifiedMethod({ store: new MemoryCheckpointStore() });
  afterAll(() => method.release());
  const small = train.filter((_, i) => i % 8 === 0); // 60 samples of every digit

  it.each([
    ['an MLP', { model: 'mlp', hiddenLayers: [8] }, "certified removal needs model 'logistic-regression' (a convex loss), got mlp"],
    ['SGD settings', { epochs: 5 }, 'epochs does not apply to certified removal (trained by L-BFGS to a gradient norm of 1e-6 per sample), got 5'],
    ['no settings', { certified: undefined }, "method 'certified' needs certified settings {epsilon, delta, lambda, sigma, noiseSeed}"],
    ['epsilon 0', { certified: { ...resolveCertified(request, 60, NOISE_SEED), epsilon: 0 } }, 'certified.epsilon must be a finite number > 0, got 0'],
    ['delta of 1/n', { certified: resolveCertified({ ...request, delta: 0.02 }, 40, NOISE_SEED) }, 'certified.delta must be below 1/n = 1/60 (n: the training samples), got 0.02'],
    [
      'a budget below the training tolerance',
      { certified: resolveCertified({ ...request, epsilon: 1e-6 }, 60, NOISE_SEED) },
      /certified budget sigma epsilon \/ c = .* is below the training's gradient tolerance 1e-6 n = 0.00006: raise certified.sigma or certified.epsilon/,
    ],
  ])('refuses %s, naming the field', async (_, overrides, message) => {
    const config = { ...certifiedConfig(), ...overrides } as TrainingConfigInput;
    await expect(method.train({ modelId: 'm', config, samples: small })).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(typeof message === 'string' ? escape(message) : message) });
  });
});

function escape(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`);
}
