/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { MemoryCheckpointStore } from './checkpoint-store';
import { loadIris, splitTrainTest } from './datasets';
import { evaluateModel, selectEvaluationSamples } from './evidence';
import { computeAccuracy, computeLosses, computeMembershipAuc } from './metrics';
import { packFeatures } from './samples';
import { loadVerifiedModel } from './serve';
import { createSisaMethod } from './sisa';
import { commitExamples, irisSisaConfig } from './testing/factories';

describe('evaluateModel', () => {
  it('matches a direct computation, with fresh rows and with rows it has seen before', async () => {
    const iris = splitTrainTest(loadIris(), { seed: 'evidence', testFraction: 0.3 });
    const train = commitExamples(iris.train);
    const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
    const model = await sisa.train({ modelId: 'evidence', config: irisSisaConfig({ epochs: 3 }), samples: train, testSet: iris.test });
    await sisa.release();
    const sets = { retain: train.slice(20), forget: train.slice(0, 20), test: iris.test };

    const served = await loadVerifiedModel(model.onnx, model.onnxSha256);
    const predict = (rows: typeof iris.test) => served.predict(packFeatures(rows, 4));
    const [retain, forget, test] = [await predict(sets.retain), await predict(sets.forget), await predict(sets.test)];
    await served.release();
    const expected = {
      retainAccuracy: computeAccuracy(
        retain,
        sets.retain.map((s) => s.label),
      ),
      forgetAccuracy: computeAccuracy(
        forget,
        sets.forget.map((s) => s.label),
      ),
      testAccuracy: computeAccuracy(
        test,
        sets.test.map((s) => s.label),
      ),
      membershipAuc: computeMembershipAuc(
        computeLosses(
          forget,
          sets.forget.map((s) => s.label),
        ),
        computeLosses(
          test,
          sets.test.map((s) => s.label),
        ),
      ),
    };
    const copy = <T extends object>(rows: T[]) => rows.map((r) => ({ ...r }));
    const fresh = await evaluateModel(model.onnx, model.onnxSha256, {
      retain: copy(sets.retain),
      forget: copy(sets.forget),
      test: copy(sets.test),
    });
    const first = await evaluateModel(model.onnx, model.onnxSha256, sets);
    const second = await evaluateModel(model.onnx, model.onnxSha256, sets);
    for (const evaluation of [fresh, first, second]) {
      expect(evaluation.retainAccuracy).toBeCloseTo(expected.retainAccuracy, 12);
      expect(evaluation.forgetAccuracy).toBeCloseTo(expected.forgetAccuracy, 12);
      expect(evaluation.testAccuracy).toBeCloseTo(expected.testAccuracy, 12);
      expect(evaluation.membershipAuc).toBeCloseTo(expected.membershipAuc, 6);
    }
    expect(expected.testAccuracy).toBeGreaterThan(0.5);
  });
});

describe('selectEvaluationSamples', () => {
  it('picks a fixed subset by seed and ids, the same subset of survivors a fresh selection picks', () => {
    const samples = commitExamples(loadIris());
    const chosen = selectEvaluationSamples(samples, 's', 40);
    expect(chosen).toHaveLength(40);
    expect(
      selectEvaluationSamples([...samples].reverse(), 's', 40)
        .map((s) => s.externalId)
        .sort(),
    ).toEqual(chosen.map((s) => s.externalId).sort());
    const survivors = samples.filter((s) => s.externalId !== chosen[0].externalId);
    const again = selectEvaluationSamples(survivors, 's', 40).map((s) => s.externalId);
    expect(again).toEqual(expect.arrayContaining(chosen.slice(1).map((s) => s.externalId)));
    expect(selectEvaluationSamples(samples, 's', 500)).toHaveLength(150);
  });
});

describe('selectEvaluationSamples after forgetting', () => {
  it("derives the survivors' subset from the earlier ranking, equal to a fresh selection, forget after forget", () => {
    const samples = commitExamples(loadIris());
    const limit = 10; // the kept head is 4 x 10 long: the 4th pass below exhausts it and ranks again
    let current = samples;
    selectEvaluationSamples(current, 's', limit);
    for (let pass = 0; pass < 6; pass++) {
      const chosen = selectEvaluationSamples(current, 's', limit);
      const removed = new Set([...chosen.slice(0, 8), current[pass]]);
      const survivors = current.filter((x) => !removed.has(x));
      const derived = selectEvaluationSamples(survivors, 's', limit, { samples: current, removed });
      const fresh = selectEvaluationSamples([...survivors].reverse(), 's', limit);
      expect(derived.map((x) => x.externalId)).toEqual(fresh.map((x) => x.externalId));
      current = survivors;
    }
  });

  it('ignores a derivation whose counts do not add up, and ranks again', () => {
    const samples = commitExamples(loadIris());
    selectEvaluationSamples(samples, 's', 20);
    const survivors = samples.slice(5);
    const wrong = selectEvaluationSamples(survivors, 's', 20, { samples, removed: new Set(samples.slice(0, 2)) });
    expect(wrong.map((x) => x.externalId)).toEqual(selectEvaluationSamples([...survivors], 's', 20).map((x) => x.externalId));
  });
});
