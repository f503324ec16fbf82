/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { validateEvent, type MembershipEvidence } from '@lethe/events';
import { deserializeWeights } from '../architecture';
import { MemoryCheckpointStore } from '../checkpoint-store';
import { layerSizesOf, normalizeConfig } from '../config';
import { loadMnist, splitTrainTest } from '../datasets';
import { UnlearningError } from '../errors';
import { MemoryLedgerSink } from '../events';
import { TrainedModel } from '../model';
import { Progress } from '../progress';
import { compactFeatures } from '../samples';
import { planSisaForget } from '../sharded-method';
import { RunnerPool } from '../sharded-training';
import { createSisaMethod } from '../sisa';
import { commitExamples, mnistSisaConfig } from '../testing/factories';
import { createMembershipEngine, MembershipEngine } from './engine';
import { measureMembership } from './measure';

// 600 of the `mnist` package's digits: 390 to train on, 210 held out. An MLP that fits them in a few seconds.
const split = splitTrainTest(loadMnist({ perDigit: 60 }), { seed: 'membership-split', testFraction: 0.35 });
const train = compactFeatures(commitExamples(split.train));
const test = compactFeatures(split.test);
const config = mnistSisaConfig({ shards: 2, slices: 2, hiddenLayers: [64], epochs: 10, seed: 'membership' });

/** A forgotten set large enough for the attack's intervals without canaries: every 6th training sample (65). */
const manyForgotten = train.filter((_, i) => i % 6 === 0).map((s) => s.externalId);

let sisa: ReturnType<typeof createSisaMethod>;
let store: MemoryCheckpointStore;
let before: TrainedModel;

beforeAll(async () => {
  store = new MemoryCheckpointStore();
  sisa = createSisaMethod({ store });
  before = await sisa.train({ modelId: 'membership', config, samples: train, testSet: test });
});

afterAll(() => sisa.release());

/** Each attack (ensemble and per member) of the evidence, with its name. */
function attacks(evidence: MembershipEvidence) {
  return [
    ['ensemble', evidence],
    ['per member', evidence.perMember!],
  ] as const;
}

/**
 * Not above chance: the interval of the TPR at 1% FPR reaches down to what a model that learned nothing scores
 * (the evidence's `chance`: 1.5% over 200 non-members), and the AUC is near 0.5. (A 95% interval holds the
 * chance level in 95 of 100 draws of alike members and non-members: a test of several such intervals would fail
 * now and then by design, so the AUC is held to a band instead.)
 */
function expectChance(evidence: MembershipEvidence, figures: Pick<MembershipEvidence, 'tprAt1pctFpr' | 'ci95' | 'auc'>, side: 'after' | 'reference') {
  expect(figures.ci95!.tprAt1pctFpr[side]![0]).toBeLessThanOrEqual(evidence.chance!.tprAt1pctFpr!);
  expect(Math.abs(figures.auc![side] - 0.5)).toBeLessThan(0.15);
}

describe('measureMembership with canaries', () => {
  it('detects canaries in the model that learned them and not after a real SISA forget, nor in the reference; canaries stay in evaluation-only models', async () => {
    const forgotten = train.slice(0, 3).map((s) => s.externalId); // one data subject
    const ledger = new MemoryLedgerSink();
    const plainLedger = new MemoryLedgerSink();
    const plainStore = new MemoryCheckpointStore();
    const plain = createSisaMethod({ store: plainStore, ledger: plainLedger });
    const withStore = new MemoryCheckpointStore();
    const withMembership = createSisaMethod({ store: withStore, ledger });
    const [trainedPlain, trainedWith] = [
      await plain.train({ modelId: 'm', config, samples: train }),
      await withMembership.train({ modelId: 'm', config, samples: train }),
    ];
    const request = { requestIds: ['r1'], externalIds: forgotten, testSet: test };
    const unlearned = await plain.forget(trainedPlain, request);
    const measured = await withMembership.forget(trainedWith, { ...request, membership: { shadowModels: 8, canaries: 200 } });
    await Promise.all([plain.release(), withMembership.release()]);

    const evidence = measured.evidence.membership!;
    expect(evidence).toMatchObject({
      population: 'canaries',
      shadowModels: 8,
      variance: 'fixed',
      members: { forgotten: 3, canaries: 200 },
      nonMembers: { heldOut: 210, canaries: 200 },
      models: { evaluationOnly: true, afterIsPublished: true, after: measured.model.onnxSha256 },
    });
    for (const [name, figures] of attacks(evidence)) {
      // Power: the model that learned the canaries gives most of them away at 1% FPR, far beyond chance.
      expect({ name, tpr: figures.tprAt1pctFpr!.before! > 0.5, low: figures.ci95!.tprAt1pctFpr.before![0] > evidence.chance!.tprAt1pctFpr! }).toEqual({ name, tpr: true, low: true });
      expect(figures.ci95!.auc.before[0]).toBeGreaterThan(0.9);
      // After SISA forgot them (the very bytes of a retrain without them), they look like canaries never seen.
      expectChance(evidence, figures, 'after');
      expectChance(evidence, figures, 'reference');
    }
    // The forgotten samples themselves, against held-out samples: nothing flagged after, as in the reference.
    expect(evidence.perMember!.forgottenAt1pctFpr).toMatchObject({ after: 0, reference: 0 });
    expect(() => validateEvent(measured.event)).not.toThrow();

    // Nothing of the evaluation reaches the method's store or the ledger: the same checkpoints and events as a
    // forget without it, the published version is the same file, and only the evidence differs.
    expect(measured.model.onnxSha256).toBe(unlearned.model.onnxSha256);
    expect(withStore.size).toBe(plainStore.size);
    const withoutMembership = (events: typeof ledger.events) =>
      events.map((e) => (e.type === 'UNLEARN_COMPLETED' ? { ...e, evidence: { ...e.evidence, membership: null } } : e));
    expect(withoutMembership(ledger.events)).toEqual(withoutMembership(plainLedger.events));
    expect(ledger.events.filter((e) => e.type === 'UNLEARN_COMPLETED')).toEqual([measured.event]);
    expect(measured.timings.membership).toBeGreaterThan(0);
  });

  it('catches a no-op forget: the method left the canaries in, so "after" reads as "before" and unlike the reference', async () => {
    const after = await sisa.forget(before, { requestIds: ['r'], externalIds: train.slice(5, 8).map((s) => s.externalId) });
    const pool = new RunnerPool();
    const engine = noOpForgetting(realEngine(pool));
    const evidence = await measureMembership(engine, { before, after: after.model, testSet: test, options: { shadowModels: 8, canaries: 200 } });
    await engine.release();
    await pool.release();
    expect(evidence.models).toMatchObject({ evaluationOnly: true, afterIsPublished: false });
    expect(evidence.models!.after).toBe(evidence.models!.before);
    for (const [name, figures] of attacks(evidence)) {
      for (const measure of ['tprAt1pctFpr', 'auc'] as const) {
        expect({ name, measure, after: figures[measure]!.after }).toEqual({ name, measure, after: figures[measure]!.before });
        expect(figures.ci95![measure].after).toEqual(figures.ci95![measure].before);
      }
      expect(figures.ci95!.tprAt1pctFpr.after![0]).toBeGreaterThan(figures.ci95!.tprAt1pctFpr.reference![1]);
      expectChance(evidence, figures, 'reference');
    }
  });
});

describe('measureMembership without canaries', () => {
  it('reads the forgotten samples against held-out ones: a model left unchanged but labelled as forgotten reads as before', async () => {
    const forgotten = new Set(manyForgotten);
    const unchanged: TrainedModel = { ...before, version: 2, samples: before.samples.filter((s) => !forgotten.has(s.externalId)) };
    const evidence = await sisa.measureMembership(before, unchanged, { testSet: test, options: { shadowModels: 8 } });
    expect(evidence).toMatchObject({
      population: 'forgotten',
      members: { forgotten: manyForgotten.length, canaries: 0 },
      nonMembers: { heldOut: 210, canaries: 0 },
      models: { evaluationOnly: false, afterIsPublished: true, before: before.onnxSha256, after: before.onnxSha256 },
    });
    const { perMember } = evidence;
    // The shard model that held each digit gives some of them away, beyond chance; the reference does not.
    expect(perMember!.ci95.tprAt1pctFpr.before![0]).toBeGreaterThan(evidence.chance!.tprAt1pctFpr!);
    expectChance(evidence, perMember!, 'reference');
    for (const [, figures] of attacks(evidence)) {
      expect(figures.tprAt1pctFpr!.after).toBe(figures.tprAt1pctFpr!.before);
      expect(figures.auc!.after).toBe(figures.auc!.before);
    }

    // The real forget of the same samples: the per-member attack no longer finds them.
    const real = await sisa.forget(before, { requestIds: ['r'], externalIds: manyForgotten, testSet: test, membership: { shadowModels: 8 } });
    const measured = real.evidence.membership!;
    expect(measured.models).toMatchObject({ after: real.model.onnxSha256, afterIsPublished: true });
    expectChance(measured, measured.perMember!, 'after');
    expect(measured.perMember!.tprAt1pctFpr.before).toBe(perMember!.tprAt1pctFpr.before);
  });

  it('says why it skipped an evaluation too small for its intervals, before training anything', async () => {
    // A measurement reports progress ('membership') as it scores the attacked models and after each shadow
    // model; a forget reports its retraining. No report while measuring means nothing was trained: an event,
    // not a wall-clock bound (which a loaded machine could exceed).
    const reports: Progress[] = [];
    const observed = createSisaMethod({ store, onProgress: (p) => reports.push(p) });
    const after = await observed.forget(before, { requestIds: ['r'], externalIds: train.slice(0, 3).map((s) => s.externalId) });
    expect(reports.length).toBeGreaterThan(0); // positive control: the forget's retraining reported
    reports.length = 0;
    const few = await observed.measureMembership(before, after.model, { testSet: test, options: { shadowModels: 16 } });
    expect(few).toEqual({
      attack: expect.stringContaining('LiRA'),
      shadowModels: 16,
      members: { forgotten: 3, canaries: 0 },
      nonMembers: { heldOut: 210, canaries: 0 },
      skipped: { reason: expect.stringContaining('3 forgotten sample(s) are fewer than the 20 members') },
    });
    const noTestSet = await observed.measureMembership(before, { ...before, samples: before.samples.filter((s) => !manyForgotten.includes(s.externalId)) }, { options: { shadowModels: 4 } });
    expect(noTestSet.skipped!.reason).toContain('0 held-out sample(s) are fewer than the 100 non-members');
    expect(reports).toEqual([]); // no shadow model was trained
    await observed.release();
    expect(() => validateEvent({ ...after.event, evidence: { ...after.event.evidence, membership: few } })).not.toThrow();
  });

  it('does not fail the forget when the attack fails: the evidence and the log say why', async () => {
    // A training sample whose id is in the canaries' reserved prefix: the attack cannot make its canaries.
    const clash = [...train.slice(1), { ...train[0], externalId: '\u0000lethe-canary-0' }];
    const logged: string[] = [];
    const method = createSisaMethod({ store: new MemoryCheckpointStore(), log: (m) => logged.push(m) });
    const trained = await method.train({ modelId: 'clash', config, samples: clash });
    const out = await method.forget(trained, { requestIds: ['r'], externalIds: [clash[5].externalId], testSet: test, membership: { shadowModels: 4, canaries: 100 } });
    await method.release();
    expect(out.model.version).toBe(2);
    expect(out.evidence.membership).toMatchObject({
      members: { forgotten: 1, canaries: 100 },
      nonMembers: { heldOut: 210, canaries: 100 },
      skipped: { reason: expect.stringContaining('the attack failed: externalId "\\u0000lethe-canary-0" uses the prefix reserved for canaries') },
    });
    expect(logged).toEqual([expect.stringContaining('model clash version 2: membership the attack failed')]);
    expect(() => validateEvent(out.event)).not.toThrow();
  });

  it('refuses shadow-model counts out of range before forgetting anything', async () => {
    const size = store.size;
    for (const shadowModels of [3, 257, 2.5]) {
      await expect(sisa.forget(before, { requestIds: ['r'], externalIds: manyForgotten, membership: { shadowModels } })).rejects.toThrow(
        new UnlearningError('INVALID_REQUEST', `membership.shadowModels must be an integer in [4, 256], got ${shadowModels}`),
      );
    }
    expect(store.size).toBe(size);
  });
});

/** The engine a SISA method gives its membership evaluations, made here from the method's store. */
function realEngine(pool: RunnerPool): MembershipEngine {
  const layers = layerSizesOf(normalizeConfig(config));
  return createMembershipEngine({ store }, pool, planSisaForget, (model) =>
    Promise.all(
      model.members.map(async (shard) => {
        const last = model.shards[shard].slices[model.config.slices - 1];
        return { weightsSha256: last.weightsSha256, weights: deserializeWeights(layers, (await store.get(last.checkpoint))!) };
      }),
    ),
  );
}

/** A method whose forget changes nothing: the model it returns is the one it was given. */
function noOpForgetting(engine: MembershipEngine): MembershipEngine {
  return { ...engine, forget: async (model) => model };
}
