/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { validateEvent } from '@lethe/events';
import { placeSample } from './assignment';
import { MemoryCheckpointStore } from './checkpoint-store';
import { epochsOfSlices, normalizeConfig, TrainingConfigInput } from './config';
import { loadIris, splitTrainTest } from './datasets';
import { BatchLearnedEvent, MemoryLedgerSink } from './events';
import { createFullRetrainMethod } from './full-retrain';
import { TrainedModel } from './model';
import { Sample } from './samples';
import { createSisaMethod } from './sisa';
import { StepRunner } from './trainer';
import { commitExamples, irisSisaConfig } from './testing/factories';

const iris = commitExamples(splitTrainTest(loadIris(), { seed: 'iris-split', testFraction: 0.2 }).train);
/** The samples of the first training, and the few a learn appends. */
const base = iris.slice(0, iris.length - 6);
const fresh = iris.slice(iris.length - 6);

/** Optimizer steps the step runners actually run while `work` does (every call counted, nothing replaced). */
async function countingSteps<T>(work: () => Promise<T>): Promise<{ result: T; steps: number }> {
  const spy = jest.spyOn(StepRunner.prototype, 'runSteps');
  try {
    const result = await work();
    const steps = spy.mock.calls.reduce((n, call) => n + (call[2] as unknown[]).length, 0);
    return { result, steps };
  } finally {
    spy.mockRestore();
  }
}

/** An independent training from scratch (its own store, no ledger) of the given samples, batches as they say. */
async function fromScratch(config: TrainingConfigInput, samples: readonly Sample[]): Promise<TrainedModel> {
  const method = config.method === 'sisa' ? createSisaMethod({ store: new MemoryCheckpointStore() }) : createFullRetrainMethod({ store: new MemoryCheckpointStore() });
  try {
    return await method.train({ modelId: 'scratch', config, samples });
  } finally {
    await method.release();
  }
}

const inBatch = (samples: readonly Sample[], batch: number) => samples.map((s) => ({ ...s, batch }));
const batchesOf = (ledger: MemoryLedgerSink, version: number) =>
  ledger.events.filter((e): e is BatchLearnedEvent => e.type === 'BATCH_LEARNED' && e.modelVersion === version);

describe('online learning as appended slices', () => {
  const config = irisSisaConfig();
  const R = config.slices!;
  const ledger = new MemoryLedgerSink();
  const sisa = createSisaMethod({ store: new MemoryCheckpointStore(), ledger });
  let v1: TrainedModel;
  let v2: TrainedModel;
  let trainSteps: number;
  let learnSteps: number;

  beforeAll(async () => {
    ({ result: v1, steps: trainSteps } = await countingSteps(() => sisa.train({ modelId: 'm', config, samples: base })));
    ({ result: v2, steps: learnSteps } = await countingSteps(() => sisa.relearn!(v1, { samples: [...base, ...fresh], externalIds: fresh.map((s) => s.externalId), append: true })));
  });
  afterAll(() => sisa.release());

  it('a learn appends one slice to every shard, trained on the new samples alone from the last checkpoint', () => {
    const learned = batchesOf(ledger, 2);
    // One slice per shard, the (R+1)-th, holding exactly the new samples; each entry valid in the log's terms.
    expect(learned.map((e) => [e.shard, e.slice, e.learnBatch])).toEqual([0, 1, 2].map((shard) => [shard, R, 1]));
    expect(learned.reduce((n, e) => n + e.count, 0)).toBe(fresh.length);
    for (const e of learned) expect(() => validateEvent(e)).not.toThrow();
    // Each resumes from the shard's last checkpoint of version 1.
    expect(learned.map((e) => e.parentCheckpoint)).toEqual(v1.shards.map((s) => s.slices[R - 1].checkpoint));
    expect(v2.shards.map((s) => s.slices.length)).toEqual([R + 1, R + 1, R + 1]);
    expect(v2.manifest.appended).toMatchObject({ batches: 1 });
    // The work done: the appended slices' steps (epochs of the schedule's last slice over each shard's new samples) ...
    const lastEpochs = epochsOfSlices(normalizeConfig(config))[R - 1];
    const perShard = [0, 1, 2].map((shard) => learned.find((e) => e.shard === shard)!.count);
    expect(learnSteps).toBe(perShard.reduce((n, count) => n + lastEpochs * Math.ceil(count / config.batchSize!), 0));
    // ... a small part of a training's (which visits every sample in every slice from the first on).
    expect(learnSteps * 10).toBeLessThan(trainSteps);
  });

  it("the learned version's bytes are those of an independent training from scratch of the same plan (the new samples as batch 1)", async () => {
    const scratch = await fromScratch(config, [...base, ...inBatch(fresh, 1)]);
    expect(scratch.onnxSha256).toBe(v2.onnxSha256);
    expect(scratch.shards.map((s) => s.slices.map((r) => r.batchRoot))).toEqual(v2.shards.map((s) => s.slices.map((r) => r.batchRoot)));
    // Control: the same samples placed among the R slices by hash (no appended slice) make another model.
    expect((await fromScratch(config, [...base, ...fresh])).onnxSha256).not.toBe(v2.onnxSha256);
  });

  it('a forget of an appended sample retrains that shard from its appended slice; of an original one, from its slice through the appended one', async () => {
    const [appended] = v2.samples.filter((s) => s.batch === 1);
    const shardOf = (s: Sample) => placeSample(String(config.seed), s.externalId, config.shards!, R).shard;
    const v3 = await sisa.forget(v2, { requestIds: ['r1'], externalIds: [appended.externalId] });
    expect(v3.affected).toEqual([{ shard: shardOf(appended), fromSlice: R }]);
    const left3 = v2.samples.filter((s) => s !== appended);
    expect(v3.model.onnxSha256).toBe((await fromScratch(config, left3)).onnxSha256);

    const original = base.find((s) => shardOf(s) === shardOf(appended) && placeSample(String(config.seed), s.externalId, config.shards!, R).slice === 1)!;
    const v4 = await sisa.forget(v3.model, { requestIds: ['r2'], externalIds: [original.externalId] });
    expect(v4.affected).toEqual([{ shard: shardOf(original), fromSlice: 1 }]);
    expect(batchesOf(ledger, 4).map((e) => e.slice)).toEqual([1, 2, R]);
    const left4 = left3.filter((s) => s.externalId !== original.externalId);
    expect(v4.model.onnxSha256).toBe((await fromScratch(config, left4)).onnxSha256);

    // Every appended sample forgotten: the appended slice stays in every shard, retrained empty where it held
    // some (its latest BATCH_LEARNED then says it holds nothing); the bytes are a training of the R slices alone.
    const rest = v4.model.samples.filter((s) => s.batch === 1);
    const v5 = await sisa.forget(v4.model, { requestIds: ['r3'], externalIds: rest.map((s) => s.externalId) });
    expect(v5.model.shards.map((s) => s.slices.length)).toEqual([R + 1, R + 1, R + 1]);
    const emptied = [...new Set(rest.map(shardOf))].sort();
    expect(batchesOf(ledger, 5).filter((e) => e.slice === R).map((e) => [e.shard, e.count])).toEqual(emptied.map((shard) => [shard, 0]));
    expect(v5.model.onnxSha256).toBe((await fromScratch(config, base.filter((s) => s.externalId !== original.externalId))).onnxSha256);
    // The next learn is batch 2, after the emptied slice.
    const v6 = await sisa.relearn!(v5.model, { samples: [...v5.model.samples, ...rest.map(({ batch, ...s }) => s)], externalIds: rest.map((s) => s.externalId), append: true });
    expect(v6.shards.map((s) => s.slices.length)).toEqual([R + 2, R + 2, R + 2]);
    expect(batchesOf(ledger, 6).map((e) => [e.slice, e.learnBatch])).toEqual([0, 1, 2].map(() => [R + 1, 2]));
    expect(v6.onnxSha256).toBe((await fromScratch(config, [...v5.model.samples, ...inBatch(rest, 2)])).onnxSha256);
    // A feature forget trains every shard from scratch, keeping the slices (the emptied one too).
    const masked = await sisa.forgetFeatures!(v5.model, { requestIds: ['f'], features: [2] });
    expect(masked.model.shards.map((s) => s.slices.length)).toEqual([R + 1, R + 1, R + 1]);
    expect(masked.model.onnxSha256).toBe((await fromScratch({ ...config, maskedFeatures: [2] }, v5.model.samples)).onnxSha256);
  });

  it('an approximate forget that empties the learn batch: the exact versions after it keep its slice, as after an exact forget', async () => {
    const own = new MemoryLedgerSink();
    const method = createSisaMethod({ store: new MemoryCheckpointStore(), ledger: own });
    const ids = fresh.map((s) => s.externalId);
    const slices = (m: TrainedModel) => m.shards.map((s) => s.slices.length);
    const emptiedEntries = (version: number) => batchesOf(own, version).filter((e) => e.slice >= R).map((e) => [e.shard, e.slice, e.count, e.learnBatch]);
    try {
      const trained = await method.train({ modelId: 'a', config, samples: base });
      const learned = await method.relearn!(trained, { samples: [...base, ...fresh], externalIds: ids, append: true });
      // The approximate version (no shard records) keeps the slice count of the version it came from.
      const approx = await method.forget(learned, { requestIds: ['a1'], externalIds: ids, approximate: { algorithm: 'finetune' } });
      expect(approx.model.shards).toEqual([]);
      expect(approx.model.manifest.approximate).toMatchObject({ slices: R + 1 });
      const [original] = base;
      const left = base.filter((s) => s !== original);

      // A later exact forget from the approximate version trains every shard from scratch: the emptied slice
      // stays in every shard, logged empty as batch 1, so the log's latest entry of that slice holds nothing.
      const exact = await method.forget(approx.model, { requestIds: ['a2'], externalIds: [original.externalId] });
      expect(slices(exact.model)).toEqual([R + 1, R + 1, R + 1]);
      expect(emptiedEntries(exact.model.version)).toEqual([0, 1, 2].map((shard) => [shard, R, 0, 1]));
      expect(exact.model.manifest.appended).toMatchObject({ batches: 1 });
      // Control: the same samples forgotten exactly from the learned version give the same slices and bytes.
      const control = await method.forget(learned, { requestIds: ['c1'], externalIds: [...ids, original.externalId] });
      expect(slices(control.model)).toEqual(slices(exact.model));
      expect(control.model.onnxSha256).toBe(exact.model.onnxSha256);
      expect(exact.model.onnxSha256).toBe((await fromScratch(config, left)).onnxSha256);

      // The next learn after the approximate version is batch 2, after the emptied slice.
      const relearned = await method.relearn!(approx.model, { samples: [...approx.model.samples, ...fresh], externalIds: ids, append: true });
      expect(slices(relearned)).toEqual([R + 2, R + 2, R + 2]);
      expect(batchesOf(own, relearned.version).filter((e) => e.slice > R).map((e) => [e.slice, e.learnBatch])).toEqual([0, 1, 2].map(() => [R + 1, 2]));
      expect(relearned.onnxSha256).toBe((await fromScratch(config, [...base, ...inBatch(fresh, 2)])).onnxSha256);
      // A feature forget of the approximate version keeps the emptied slice too.
      const masked = await method.forgetFeatures!(approx.model, { requestIds: ['f'], features: [2] });
      expect(slices(masked.model)).toEqual([R + 1, R + 1, R + 1]);
    } finally {
      await method.release();
    }
  });

  it('a suspended appended sample learned again goes back to its batch: the bytes of the version before', async () => {
    const [appended] = v2.samples.filter((s) => s.batch === 1);
    const store = new MemoryCheckpointStore();
    const method = createSisaMethod({ store });
    try {
      const trained = await method.train({ modelId: 'restore', config, samples: base });
      const learned = await method.relearn!(trained, { samples: [...base, ...fresh], externalIds: fresh.map((s) => s.externalId), append: true });
      const suspended = await method.forget(learned, { requestIds: ['s'], externalIds: [appended.externalId] });
      const restored = await method.relearn!(suspended.model, { samples: [...suspended.model.samples, { ...appended }], externalIds: [appended.externalId] });
      expect(restored.onnxSha256).toBe(learned.onnxSha256);
      expect(suspended.model.onnxSha256).not.toBe(learned.onnxSha256);
    } finally {
      await method.release();
    }
  });

  it('full retraining: a learn appends a slice to its one shard and resumes from its checkpoint', async () => {
    const full = { ...irisSisaConfig(), method: 'full-retrain' as const, shards: 1, slices: 1, epochs: 20 };
    const method = createFullRetrainMethod({ store: new MemoryCheckpointStore() });
    try {
      const { result: trained, steps: fullSteps } = await countingSteps(() => method.train({ modelId: 'full', config: full, samples: base }));
      const { result: learned, steps } = await countingSteps(() =>
        method.relearn!(trained, { samples: [...base, ...fresh], externalIds: fresh.map((s) => s.externalId), append: true }),
      );
      expect(steps).toBe(20 * Math.ceil(fresh.length / full.batchSize!));
      expect(steps * 10).toBeLessThan(fullSteps);
      expect(learned.onnxSha256).toBe((await fromScratch(full, [...base, ...inBatch(fresh, 1)])).onnxSha256);
    } finally {
      await method.release();
    }
  });
});
