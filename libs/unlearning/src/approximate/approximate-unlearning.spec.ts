/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { validateEvent } from '@lethe/events';
import type { ApproximateAlgorithm } from '@lethe/events';
import { MemoryCheckpointStore } from '../checkpoint-store';
import { TrainingConfigInput } from '../config';
import { loadIris, loadMnist, splitTrainTest } from '../datasets';
import { MemoryLedgerSink } from '../events';
import { readInferenceMembers } from '../inference-graph';
import { loadVerifiedModel } from '../serve';
import { TrainedModel } from '../model';
import { Sample } from '../samples';
import { isApproximateVersion } from '../sharded-method';
import { createFullRetrainMethod } from '../full-retrain';
import { createSisaMethod } from '../sisa';
import { commitExamples, irisSisaConfig, mnistSisaConfig } from '../testing/factories';

const iris = splitTrainTest(loadIris(), { seed: 'iris-split', testFraction: 0.2 });
const irisTrain = commitExamples(iris.train);
const ALGORITHMS: ApproximateAlgorithm[] = ['finetune', 'neggrad+', 'scrub'];

function methodFor(config: TrainingConfigInput, store = new MemoryCheckpointStore(), ledger?: MemoryLedgerSink) {
  return config.method === 'sisa' ? createSisaMethod({ store, ledger }) : createFullRetrainMethod({ store, ledger });
}

async function trainFromScratch(config: TrainingConfigInput, samples: readonly Sample[], version: number): Promise<TrainedModel> {
  const method = methodFor(config);
  try {
    return await method.train({ modelId: 'approximate', config, samples, version });
  } finally {
    await method.release();
  }
}

const without = (samples: readonly Sample[], ids: readonly string[]) => samples.filter((s) => !ids.includes(s.externalId));

describe.each([
  ['SISA logistic regression on iris', irisSisaConfig(), irisTrain, iris.test, [irisTrain[3].externalId, irisTrain[40].externalId]],
  [
    'a full MLP on 300 digits',
    mnistSisaConfig({ method: 'full-retrain', shards: 1, slices: 1, epochs: 3 }),
    commitExamples(splitTrainTest(loadMnist({ perDigit: 30 }), { seed: 'mnist-split', testFraction: 0.2 }).train),
    splitTrainTest(loadMnist({ perDigit: 30 }), { seed: 'mnist-split', testFraction: 0.2 }).test,
    ['mnist-3-0004', 'mnist-7-0011', 'mnist-1-0002'],
  ],
] as const)('approximate unlearning of %s', (_, config, samples, testSet, ids) => {
  const store = new MemoryCheckpointStore();
  const ledger = new MemoryLedgerSink();
  const method = methodFor(config, store, ledger);
  let v1: TrainedModel;

  beforeAll(async () => {
    v1 = await method.train({ modelId: 'approximate', config, samples, testSet });
  });
  afterAll(() => method.release());

  it.each(ALGORITHMS)('%s publishes a version whose UNLEARN_COMPLETED says approximate, changing only the shards that held the samples', async (algorithm) => {
    const logged = ledger.events.length;
    const outcome = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids], testSet, approximate: { algorithm } });
    expect(outcome.event.guarantee).toEqual({ kind: 'approximate', algorithm, steps: outcome.steps });
    expect(outcome.steps).toBeGreaterThan(0);
    expect(outcome.model.version).toBe(2);
    expect(isApproximateVersion(outcome.model)).toBe(true);
    expect(outcome.model.samples.map((s) => s.externalId)).toEqual(without(samples, ids).map((s) => s.externalId));
    // Nothing was trained, no checkpoint written: a version and its unlearning.
    expect(ledger.events.slice(logged).map((e) => e.type)).toEqual(['MODEL_PUBLISHED', 'UNLEARN_COMPLETED']);
    ledger.events.slice(logged).forEach((e) => validateEvent(e));
    const touched = (outcome.model.manifest.approximate as { shards: number[] }).shards;
    const layers = [config.numFeatures, ...(config.hiddenLayers ?? []), config.numClasses];
    const before = readInferenceMembers(v1.onnx, layers, v1.members.length);
    const after = readInferenceMembers(outcome.model.onnx, layers, outcome.model.members.length);
    v1.members.forEach((shard, m) => {
      const same = before[m].every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(after[outcome.model.members.indexOf(shard)][i].buffer)));
      expect(same).toBe(!touched.includes(shard));
    });
    expect(outcome.evidence.before.forgetAccuracy).toBeGreaterThanOrEqual(0);
    expect(outcome.evidence.after.testAccuracy).toBeDefined();
    // The same request from the same version gives the same bytes.
    const again = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids].reverse(), testSet, approximate: { algorithm } });
    expect(again.model.onnxSha256).toBe(outcome.model.onnxSha256);
  });

  it("NegGrad+ leaves the forgotten samples' loss above what fine-tuning alone leaves it at", async () => {
    const forgottenLoss = async (model: TrainedModel) => {
      const served = await loadVerifiedModel(model.onnx, model.onnxSha256);
      try {
        const rows = samples.filter((s) => (ids as readonly string[]).includes(s.externalId));
        const out = await served.predict(rows.map((r) => Array.from(r.features)));
        return rows.reduce((sum, r, i) => sum - Math.log(out.probabilities[i * out.classes + r.label]), 0);
      } finally {
        await served.release();
      }
    };
    const finetune = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids], approximate: { algorithm: 'finetune', epochs: 3 } });
    const neggrad = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids], approximate: { algorithm: 'neggrad+', epochs: 3 } });
    expect(await forgottenLoss(neggrad.model)).toBeGreaterThan(await forgottenLoss(finetune.model));
  });

  it('is followed by an exact pass from the version before it, published after it: the bytes of a training without the samples', async () => {
    const approximate = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids], approximate: { algorithm: 'finetune' } });
    const exact = await method.forget(v1, { requestIds: ['r1'], externalIds: [...ids], version: approximate.model.version + 1 });
    expect(exact.model.version).toBe(3);
    expect(exact.event.guarantee).toEqual({ kind: 'exact' });
    const scratch = await trainFromScratch(config, without(samples, ids), 3);
    expect(exact.model.onnxSha256).toBe(scratch.onnxSha256);
  });

  it('forgets exactly from an approximate version by training every shard again, and approximately again from its published weights', async () => {
    const approximate = await method.forget(v1, { requestIds: ['r1'], externalIds: [ids[0]], approximate: { algorithm: 'scrub' } });
    const again = await method.forget(approximate.model, { requestIds: ['r2'], externalIds: [ids[1]], approximate: { algorithm: 'finetune' } });
    expect(again.model.version).toBe(3);
    const exact = await method.forget(approximate.model, { requestIds: ['r2'], externalIds: [ids[1]] });
    const scratch = await trainFromScratch(config, without(samples, ids.slice(0, 2)), 3);
    expect(exact.model.onnxSha256).toBe(scratch.onnxSha256);
  });

  it('refuses an unknown algorithm or an earlier version, naming the field', async () => {
    await expect(method.forget(v1, { requestIds: ['r'], externalIds: [ids[0]], approximate: { algorithm: 'amnesia' as ApproximateAlgorithm } })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: 'approximate.algorithm must be one of finetune, neggrad+, scrub, got amnesia',
    });
    await expect(method.forget(v1, { requestIds: ['r'], externalIds: [ids[0]], version: 1 })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: "version must be an integer above the model's 1, got 1",
    });
  });
});
