/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { validateEvent } from '@lethe/events';
import { placeSample } from './assignment';
import { computeBatchRoot } from './batch-root';
import { MemoryCheckpointStore } from './checkpoint-store';
import { TrainingConfigInput } from './config';
import { loadIris, loadMnist, splitTrainTest } from './datasets';
import { UnlearningError } from './errors';
import { DEFAULT_EVALUATION_LIMIT, evaluateModel, selectEvaluationSamples } from './evidence';
import { EngineEvent, MemoryLedgerSink } from './events';
import { FileCheckpointStore } from './file-checkpoint-store';
import { createFullRetrainMethod } from './full-retrain';
import { TrainedModel } from './model';
import { Progress } from './progress';
import { Sample } from './samples';
import { createSisaMethod } from './sisa';
import { detectRuntimeEnvelope } from './runtime-envelope';
import { commitExamples, irisSisaConfig, mnistSisaConfig } from './testing/factories';

const iris = splitTrainTest(loadIris(), { seed: 'iris-split', testFraction: 0.2 });
const irisTrain = commitExamples(iris.train);

/** Trains from scratch with a fresh store and no ledger: the reference an auditor would replay. */
async function trainFromScratch(config: TrainingConfigInput, samples: readonly Sample[]): Promise<TrainedModel> {
  const method =
    config.method === 'sisa'
      ? createSisaMethod({ store: new MemoryCheckpointStore() })
      : createFullRetrainMethod({ store: new MemoryCheckpointStore() });
  try {
    return await method.train({ modelId: 'reference', config, samples });
  } finally {
    await method.release();
  }
}

function without(samples: readonly Sample[], ids: readonly string[]): Sample[] {
  const set = new Set(ids);
  return samples.filter((s) => !set.has(s.externalId));
}

function idsWhere(
  samples: readonly Sample[],
  config: TrainingConfigInput,
  pick: (shard: number, slice: number) => boolean,
  count: number,
): string[] {
  return samples
    .filter((s) => {
      const p = placeSample(String(config.seed), s.externalId, config.shards ?? 1, config.slices ?? 1);
      return pick(p.shard, p.slice);
    })
    .slice(0, count)
    .map((s) => s.externalId);
}

describe('SISA on iris', () => {
  const config = irisSisaConfig();
  const store = new MemoryCheckpointStore();
  const ledger = new MemoryLedgerSink();
  const sisa = createSisaMethod({ store, ledger });
  let model: TrainedModel;

  beforeAll(async () => {
    model = await sisa.train({ modelId: 'iris-sisa', config, samples: irisTrain, testSet: iris.test });
  });
  afterAll(() => sisa.release());

  it('learns iris (test accuracy above 0.8)', () => {
    expect(model.metrics.testAccuracy).toBeGreaterThan(0.8);
    expect(model.members).toEqual([0, 1, 2]);
  });

  it('gives the same ONNX bytes on every run, whatever the upload order', async () => {
    const again = await trainFromScratch(config, [...irisTrain].reverse());
    expect(again.onnxSha256).toBe(model.onnxSha256);
    expect(Buffer.from(again.onnx).equals(Buffer.from(model.onnx))).toBe(true);
  });

  it('gives the same ONNX bytes in a separate process', () => {
    const root = path.resolve(__dirname, '..', '..', '..');
    const output = execFileSync(
      process.execPath,
      ['-r', path.join(root, 'scripts', 'register.js'), path.join(__dirname, 'testing', 'print-iris-model-hash.ts')],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(output.trim()).toBe(model.onnxSha256);
  }); // jest.config's 120 s: a TypeScript child process can take tens of seconds to start on a loaded machine

  it('can be replayed from its manifest: same config, same samples, same bytes and batch roots', async () => {
    const manifest = model.manifest as {
      config: TrainingConfigInput;
      shards: { slices: { batchRoot: string }[] }[];
      onnx: { sha256: string };
    };
    expect(manifest.onnx.sha256).toBe(model.onnxSha256);
    const replayed = await trainFromScratch(manifest.config, irisTrain);
    expect(replayed.onnxSha256).toBe(model.onnxSha256);
    expect((replayed.manifest as typeof manifest).shards).toEqual(manifest.shards);
    expect(replayed.hyperparamsHash).toBe(model.hyperparamsHash);
  });

  it('gives different bytes for a different seed', async () => {
    const other = await trainFromScratch({ ...config, seed: 'another seed' }, irisTrain);
    expect(other.onnxSha256).not.toBe(model.onnxSha256);
  });

  const forgetCases: { name: string; pick: (samples: Sample[]) => string[] }[] = [
    { name: 'one sample in the last slice', pick: (s) => idsWhere(s, config, (_, slice) => slice === 2, 1) },
    { name: 'one sample in the first slice', pick: (s) => idsWhere(s, config, (_, slice) => slice === 0, 1) },
    {
      name: 'three samples of one shard in different slices',
      pick: (s) => [
        ...idsWhere(s, config, (shard, slice) => shard === 1 && slice === 1, 2),
        ...idsWhere(s, config, (shard, slice) => shard === 1 && slice === 2, 1),
      ],
    },
    { name: 'ten samples across all shards', pick: (s) => s.slice(0, 10).map((x) => x.externalId) },
  ];

  it.each(forgetCases)('forgetting $name gives exactly the model trained from scratch without it', async ({ pick }) => {
    const forget = pick(irisTrain);
    expect(forget.length).toBeGreaterThan(0);
    const outcome = await sisa.forget(model, { requestIds: ['req-1'], externalIds: forget });
    const reference = await trainFromScratch(config, without(irisTrain, forget));
    expect(outcome.model.onnxSha256).toBe(reference.onnxSha256);
    expect(outcome.model.onnxSha256).not.toBe(model.onnxSha256);
    expect(outcome.model.version).toBe(model.version + 1);
    expect(outcome.model.samples).toHaveLength(irisTrain.length - forget.length);
    // Every checkpoint of the unlearned model equals the reference's, slice by slice.
    expect(outcome.model.shards.map((s) => s.slices.map((r) => r.checkpoint))).toEqual(
      reference.shards.map((s) => s.slices.map((r) => r.checkpoint)),
    );
  });

  it('drops a shard whose samples are all forgotten from the ensemble, exactly as a from-scratch training does', async () => {
    const wholeShard = idsWhere(irisTrain, config, (shard) => shard === 0, irisTrain.length);
    const outcome = await sisa.forget(model, { requestIds: ['req-shard'], externalIds: wholeShard });
    expect(outcome.model.members).toEqual([1, 2]);
    expect(outcome.model.shards[0].sampleCount).toBe(0);
    const reference = await trainFromScratch(config, without(irisTrain, wholeShard));
    expect(reference.members).toEqual([1, 2]);
    expect(outcome.model.onnxSha256).toBe(reference.onnxSha256);
  });

  it('retrains only affected shards, from the slice before the first forgotten sample', async () => {
    const forget = idsWhere(irisTrain, config, (shard, slice) => shard === 2 && slice === 1, 1);
    const before = ledger.events.length;
    const outcome = await sisa.forget(model, { requestIds: ['req-2'], externalIds: forget });
    expect(outcome.affected).toEqual([{ shard: 2, fromSlice: 1 }]);
    const events = ledger.events.slice(before);
    const learned = events.filter((e) => e.type === 'BATCH_LEARNED');
    expect(learned.map((e) => e.type === 'BATCH_LEARNED' && [e.shard, e.slice])).toEqual([
      [2, 1],
      [2, 2],
    ]);
    // Unaffected shards keep their checkpoints; the kept slice 0 of shard 2 too.
    expect(outcome.model.shards[0]).toEqual(model.shards[0]);
    expect(outcome.model.shards[1]).toEqual(model.shards[1]);
    expect(outcome.model.shards[2].slices[0]).toEqual(model.shards[2].slices[0]);
    expect(outcome.model.shards[2].slices[1].checkpoint).not.toBe(model.shards[2].slices[1].checkpoint);
    const first = learned[0];
    expect(first.type === 'BATCH_LEARNED' && first.parentCheckpoint).toBe(model.shards[2].slices[0].checkpoint);
    expect(events.map((e) => e.type)).toEqual([
      'BATCH_LEARNED',
      'CHECKPOINT_SAVED',
      'BATCH_LEARNED',
      'CHECKPOINT_SAVED',
      'MODEL_PUBLISHED',
      'UNLEARN_COMPLETED',
    ]);
  });

  it('retrains every shard from scratch when asked (the baseline), with the same bytes, evidence and events', async () => {
    const forget = idsWhere(irisTrain, config, (shard, slice) => shard === 1 && slice === 2, 1);
    const own = new MemoryLedgerSink();
    const method = createSisaMethod({ store, ledger: own });
    const sisaOutcome = await method.forget(model, { requestIds: ['r'], externalIds: forget, testSet: iris.test });
    const scratch = await method.forget(model, { requestIds: ['r'], externalIds: forget, testSet: iris.test, retrainFromScratch: true });
    await method.release();
    expect(scratch.model.onnxSha256).toBe(sisaOutcome.model.onnxSha256);
    expect(scratch.affected).toEqual([0, 1, 2].map((shard) => ({ shard, fromSlice: 0 })));
    expect(sisaOutcome.affected).toEqual([{ shard: 1, fromSlice: 2 }]);
    expect(scratch.evidence).toEqual(sisaOutcome.evidence);
    expect(scratch.steps).toBeGreaterThan(sisaOutcome.steps);
    expect(own.events.filter((e) => e.type === 'BATCH_LEARNED')).toHaveLength(1 + 9);
    for (const outcome of [sisaOutcome, scratch]) {
      const { phases, total, retrain, publish } = outcome.timings;
      expect(Object.keys(phases)).toEqual(
        expect.arrayContaining(['prepare', 'evaluateBefore', 'plan', 'train', 'export', 'evaluateAfter', 'checkpointWrites', 'ledger']),
      );
      expect(total).toBeCloseTo(
        Object.values(phases).reduce((a, b) => a + b, 0),
        9,
      );
      expect(retrain + publish).toBeLessThanOrEqual(total);
    }
  });

  it('serves several requests in one pass, equal to serving them one after the other', async () => {
    const a = idsWhere(irisTrain, config, (shard) => shard === 0, 2);
    const b = idsWhere(irisTrain, config, (shard) => shard === 1, 2);
    const together = await sisa.forget(model, { requestIds: ['req-a', 'req-b'], externalIds: [...a, ...b] });
    const first = await sisa.forget(model, { requestIds: ['req-a'], externalIds: a });
    const second = await sisa.forget(first.model, { requestIds: ['req-b'], externalIds: b });
    expect(together.model.onnxSha256).toBe(second.model.onnxSha256);
    expect(together.event.requestIds).toEqual(['req-a', 'req-b']);
    expect(together.affected.map((x) => x.shard)).toEqual([0, 1]);
  });

  it('gives the same results to concurrent requests as to sequential ones', async () => {
    const a = idsWhere(irisTrain, config, (shard) => shard === 0, 1);
    const b = idsWhere(irisTrain, config, (shard) => shard === 2, 3);
    const [x, y] = await Promise.all([
      sisa.forget(model, { requestIds: ['a'], externalIds: a }),
      sisa.forget(model, { requestIds: ['b'], externalIds: b }),
    ]);
    expect(x.model.onnxSha256).toBe((await trainFromScratch(config, without(irisTrain, a))).onnxSha256);
    expect(y.model.onnxSha256).toBe((await trainFromScratch(config, without(irisTrain, b))).onnxSha256);
  });

  it('refuses a model trained by another method (INVALID_REQUEST)', async () => {
    const full = createFullRetrainMethod({ store });
    await expect(full.forget(model, { requestIds: ['r'], externalIds: [irisTrain[0].externalId] })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    await full.release();
  });

  it('reports batch roots over the ordered commitments and JSON-safe events', () => {
    const plan = ledger.events.slice(0, 18).filter((e) => e.type === 'BATCH_LEARNED');
    expect(plan).toHaveLength(9);
    for (const event of ledger.events) assertJsonSafe(event);
    const shard0 = irisTrain
      .filter((s) => {
        const p = placeSample(config.seed as string, s.externalId, 3, 3);
        return p.shard === 0 && p.slice === 0;
      })
      .sort((x, y) =>
        Buffer.compare(
          placeSample(config.seed as string, x.externalId, 3, 3).key,
          placeSample(config.seed as string, y.externalId, 3, 3).key,
        ),
      );
    const event = plan.find((e) => e.type === 'BATCH_LEARNED' && e.shard === 0 && e.slice === 0);
    expect(event && event.type === 'BATCH_LEARNED' && event.batchRoot).toBe(computeBatchRoot(shard0.map((s) => s.commitment)));
    expect(event && event.type === 'BATCH_LEARNED' && event.count).toBe(shard0.length);
    const published = ledger.events.find((e) => e.type === 'MODEL_PUBLISHED');
    expect(published && published.type === 'MODEL_PUBLISHED' && published.onnxSha256).toBe(model.onnxSha256);
    expect(published && published.type === 'MODEL_PUBLISHED' && published.manifestHash).toBe(model.manifestHash);
  });

  it('reports events the ledger accepts', async () => {
    const own = new MemoryLedgerSink();
    const method = createSisaMethod({ store: new MemoryCheckpointStore(), ledger: own });
    const trained = await method.train({ modelId: 'iris-ledger', config: irisSisaConfig({ epochs: 2 }), samples: irisTrain });
    await method.forget(trained, { requestIds: ['r'], externalIds: [irisTrain[0].externalId], testSet: iris.test });
    await method.release();
    for (const event of own.events) expect(() => validateEvent(event)).not.toThrow();
    expect(new Set(own.events.map((e) => e.type))).toEqual(
      new Set(['BATCH_LEARNED', 'CHECKPOINT_SAVED', 'MODEL_PUBLISHED', 'UNLEARN_COMPLETED']),
    );
  });

  it('refuses unknown samples with UNKNOWN_SAMPLE and changes nothing', async () => {
    const before = ledger.events.length;
    const error = await sisa
      .forget(model, { requestIds: ['req-x'], externalIds: [irisTrain[0].externalId, 'no-such-sample'] })
      .catch((e) => e);
    expect(error).toBeInstanceOf(UnlearningError);
    expect((error as UnlearningError).code).toBe('UNKNOWN_SAMPLE');
    expect((error as UnlearningError).issues.map((i) => i.externalId)).toEqual(['no-such-sample']);
    expect(ledger.events.length).toBe(before);
    expect(model.samples).toHaveLength(irisTrain.length);
  });

  it('refuses to forget so much that S x R slices cannot be filled (INSUFFICIENT_DATA)', async () => {
    const all = irisTrain.slice(0, irisTrain.length - 5).map((s) => s.externalId);
    await expect(sisa.forget(model, { requestIds: ['r'], externalIds: all })).rejects.toMatchObject({ code: 'INSUFFICIENT_DATA' });
  });

  it('refuses empty request lists (INVALID_REQUEST)', async () => {
    await expect(sisa.forget(model, { requestIds: [], externalIds: ['iris-000'] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(sisa.forget(model, { requestIds: ['r'], externalIds: [] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('fails with CHECKPOINT_CORRUPT when a stored checkpoint changed, and appends nothing', async () => {
    const corruptStore = new MemoryCheckpointStore();
    const own = new MemoryLedgerSink();
    const method = createSisaMethod({ store: corruptStore, ledger: own });
    const trained = await method.train({ modelId: 'iris-corrupt', config: irisSisaConfig({ epochs: 2 }), samples: irisTrain });
    const appended = own.events.length;
    const record = trained.shards[1].slices[0];
    const bytes = (await corruptStore.get(record.checkpoint)) as Uint8Array;
    bytes[0] ^= 1;
    await corruptStore.put(record.checkpoint, bytes);
    const forget = idsWhere(irisTrain, irisSisaConfig(), (shard, slice) => shard === 1 && slice === 1, 1);
    await expect(method.forget(trained, { requestIds: ['r'], externalIds: forget })).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(own.events.length).toBe(appended);
    await method.release();
  });

  it('fails with CHECKPOINT_MISSING when the store lost the checkpoint to resume from', async () => {
    const forgetful = createSisaMethod({ store: new MemoryCheckpointStore() });
    const forget = idsWhere(irisTrain, config, (_, slice) => slice === 2, 1);
    await expect(forgetful.forget(model, { requestIds: ['r'], externalIds: forget })).rejects.toMatchObject({ code: 'CHECKPOINT_MISSING' });
    await forgetful.release();
  });
});

describe('the runtime envelope', () => {
  const config = irisSisaConfig({ epochs: 6 });
  const here = detectRuntimeEnvelope();

  it('is recorded in MODEL_PUBLISHED, and a worker under another one retrains from scratch instead of resuming, logged, every shard: a version never mixes envelopes', async () => {
    const store = new MemoryCheckpointStore(); // shared, as workers share the artifact store
    const ledger = new MemoryLedgerSink();
    const trainer = createSisaMethod({ store, ledger });
    const model = await trainer.train({ modelId: 'iris-envelope', config, samples: irisTrain });
    expect(ledger.events.find((e) => e.type === 'MODEL_PUBLISHED')).toMatchObject({ runtime: here });
    const forget = idsWhere(irisTrain, config, (shard, slice) => shard === 1 && slice === 2, 1);

    // Positive control: the same envelope resumes from the checkpoint after slice 1, and says nothing.
    const sameLog: string[] = [];
    const same = createSisaMethod({ store, log: (m) => sameLog.push(m) });
    const resumed = await same.forget(model, { requestIds: ['r'], externalIds: forget });
    await same.release();
    expect(resumed.affected).toEqual([{ shard: 1, fromSlice: 2 }]);
    expect(sameLog).toEqual([]);

    // A worker whose CPU kernels differ (played here by giving it another envelope): its addresses for the same
    // training differ, so the recorded checkpoints are not its own. It retrains shard 1 from slice 0, and also
    // shards 0 and 2, which hold no forgotten sample: keeping their weights would publish bytes made under two
    // envelopes, which no single replay reproduces.
    const elsewhere = { ...here, cpuKernels: here.cpuKernels === 'avx2-fma3' ? 'avx512core' : 'avx2-fma3' };
    const otherLog: string[] = [];
    const otherLedger = new MemoryLedgerSink();
    const other = createSisaMethod({ store, ledger: otherLedger, envelope: elsewhere, log: (m) => otherLog.push(m) });
    const restarted = await other.forget(model, { requestIds: ['r'], externalIds: forget });
    await other.release();
    await trainer.release();
    const everyShard = [0, 1, 2].map((shard) => ({ shard, fromSlice: 0 }));
    expect(restarted.affected).toEqual(everyShard);
    expect(restarted.event.affected).toEqual(everyShard);
    expect(otherLog).toHaveLength(3);
    expect(otherLog[0]).toContain('shard 1 retrains from slice 0, not 2');
    expect(otherLog[0]).toContain(`cpu kernels ${elsewhere.cpuKernels}`);
    expect(otherLog.slice(1).map((m) => /shard (\d)/.exec(m)![1])).toEqual(['0', '2']);
    expect(otherLog[1]).toContain('a version never mixes envelopes');
    const learned = otherLedger.events.filter((e) => e.type === 'BATCH_LEARNED');
    expect(learned.map((e) => e.type === 'BATCH_LEARNED' && [e.shard, e.slice, e.parentCheckpoint === null])).toEqual(
      [0, 1, 2].flatMap((shard) => [
        [shard, 0, true],
        [shard, 1, false],
        [shard, 2, false],
      ]),
    );
    for (const shard of [0, 1, 2]) expect(restarted.model.shards[shard].slices[0].checkpoint).not.toBe(model.shards[shard].slices[0].checkpoint);
    expect(otherLedger.events.find((e) => e.type === 'MODEL_PUBLISHED')).toMatchObject({ runtime: elsewhere });
    // On this one machine the arithmetic is in fact the same: both ways give the from-scratch bytes.
    const reference = await trainFromScratch(config, without(irisTrain, forget));
    expect(restarted.model.onnxSha256).toBe(reference.onnxSha256);
    expect(resumed.model.onnxSha256).toBe(reference.onnxSha256);
  });
});

describe("SISA's epochs per slice", () => {
  const legacy = irisSisaConfig({ epochs: 6, epochsPerSlice: 6 }); // every slice 6 epochs, as before the field
  const paper = irisSisaConfig({ epochs: 6 }); // a = 2 * 6 / 4 = 3: [3, 3, 3]

  it("trains SISA's schedule by default, recorded in the config and the manifest, at half the steps of full epochs per slice", async () => {
    const store = new MemoryCheckpointStore();
    const sisa = createSisaMethod({ store });
    const model = await sisa.train({ modelId: 'iris-paper', config: paper, samples: irisTrain });
    await sisa.release();
    expect(model.config.epochsPerSlice).toEqual([3, 3, 3]);
    expect((model.manifest.config as { epochsPerSlice: number[] }).epochsPerSlice).toEqual([3, 3, 3]);
    const full = await trainFromScratch(legacy, irisTrain);
    expect(model.onnxSha256).not.toBe(full.onnxSha256);
    const stepsOf = async (config: TrainingConfigInput) => {
      const method = createSisaMethod({ store: new MemoryCheckpointStore() });
      const trained = await method.train({ modelId: 'steps', config, samples: irisTrain });
      const forget = await method.forget(trained, { requestIds: ['r'], externalIds: [irisTrain[0].externalId], retrainFromScratch: true });
      await method.release();
      return forget.steps;
    };
    expect(await stepsOf(paper)).toBe((await stepsOf(legacy)) / 2);
  });

  it('forgets a version stored before the field with its old schedule (every slice `epochs` epochs), exactly', async () => {
    const store = new MemoryCheckpointStore();
    const sisa = createSisaMethod({ store });
    const trained = await sisa.train({ modelId: 'iris-old', config: legacy, samples: irisTrain });
    // What a version published before epochsPerSlice existed holds: no field in its config, the same hash.
    const { epochsPerSlice, ...oldConfig } = trained.config;
    expect(epochsPerSlice).toEqual([6, 6, 6]);
    const old: TrainedModel = { ...trained, config: oldConfig };
    const forget = idsWhere(irisTrain, legacy, (shard, slice) => shard === 0 && slice === 1, 1);
    const outcome = await sisa.forget(old, { requestIds: ['r'], externalIds: forget });
    await sisa.release();
    expect(outcome.affected).toEqual([{ shard: 0, fromSlice: 1 }]);
    expect(outcome.model.config.epochsPerSlice).toBeUndefined();
    expect(outcome.model.hyperparamsHash).toBe(trained.hyperparamsHash);
    expect(outcome.model.onnxSha256).toBe((await trainFromScratch(legacy, without(irisTrain, forget))).onnxSha256);
    expect(outcome.model.onnxSha256).not.toBe((await trainFromScratch(paper, without(irisTrain, forget))).onnxSha256);
  });
});

describe('evidence of forgetting', () => {
  it('reports accuracies and membership AUC before, after, and for the retrained reference', async () => {
    const config = irisSisaConfig({ shards: 2, slices: 2 });
    const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
    const model = await sisa.train({ modelId: 'iris-evidence', config, samples: irisTrain });
    const forget = irisTrain.slice(0, 12).map((s) => s.externalId);
    const outcome = await sisa.forget(model, { requestIds: ['r'], externalIds: forget, testSet: iris.test, compareWithRetrain: true });
    await sisa.release();
    const { evidence } = outcome;
    expect(evidence.forgottenCount).toBe(12);
    expect(evidence.retainCount).toBe(irisTrain.length - 12);
    expect(evidence.reference?.onnxSha256).toBe(outcome.model.onnxSha256);
    // The published evidence (computed member by member, from caches) is what the published file gives.
    const sets = {
      retain: selectEvaluationSamples(without(irisTrain, forget), String(config.seed), DEFAULT_EVALUATION_LIMIT),
      forget: irisTrain.slice(0, 12),
      test: iris.test,
    };
    expect(await evaluateModel(outcome.model.onnx, outcome.model.onnxSha256, sets)).toEqual(evidence.after);
    expect(await evaluateModel(model.onnx, model.onnxSha256, sets)).toEqual(evidence.before);
    expect(evidence.reference?.membershipAuc).toBe(evidence.after.membershipAuc);
    for (const e of [evidence.before, evidence.after]) {
      expect(e.testAccuracy).toBeGreaterThan(0.7);
      expect(e.membershipAuc).toBeGreaterThanOrEqual(0);
      expect(e.membershipAuc).toBeLessThanOrEqual(1);
    }
    assertJsonSafe(outcome.event);
    expect(outcome.event.evidence).toMatchObject({ forgottenCount: 12, after: { testAccuracy: evidence.after.testAccuracy } });
  });

  it('publishes first and records the same evidence afterwards (publishForget, then recordEvidence: EVIDENCE_RECORDED)', async () => {
    const config = irisSisaConfig({ shards: 2, slices: 2 });
    const forget = irisTrain.slice(3, 9).map((s) => s.externalId);
    const inline = createSisaMethod({ store: new MemoryCheckpointStore() });
    const ledger = new MemoryLedgerSink();
    const store = new MemoryCheckpointStore();
    const later = createSisaMethod({ store, ledger });
    const evidenceOf = { testSet: iris.test, compareWithRetrain: true };
    try {
      const model = await inline.train({ modelId: 'iris-later', config, samples: irisTrain });
      const expected = await inline.forget(model, { requestIds: ['r1', 'r2'], externalIds: forget, ...evidenceOf });
      const trained = await later.train({ modelId: 'iris-later', config, samples: irisTrain });
      ledger.events.length = 0;
      const published = await later.publishForget!(trained, { requestIds: ['r1', 'r2'], externalIds: forget });
      // The same version, published with nothing evaluated: its metrics are the sample count, its evidence follows.
      expect(published.model.onnxSha256).toBe(expected.model.onnxSha256);
      expect(published.model.metrics).toEqual({ samples: irisTrain.length - forget.length });
      expect(published.event.evidence).toEqual({ forgottenCount: 6, retainCount: irisTrain.length - 6, recordedIn: 'EVIDENCE_RECORDED' });
      expect(published).not.toHaveProperty('evidence');
      expect(published.timings.phases.evaluateBefore).toBeLessThan(0.01);
      expect(ledger.events.map((e) => e.type).slice(-2)).toEqual(['MODEL_PUBLISHED', 'UNLEARN_COMPLETED']);
      const recorded = await later.recordEvidence!(trained, published.model, { requestIds: ['r1', 'r2'], ...evidenceOf });
      expect(recorded.evidence).toEqual(expected.evidence);
      expect(recorded.event).toEqual({
        type: 'EVIDENCE_RECORDED',
        version: 1,
        modelId: 'iris-later',
        modelVersion: published.model.version,
        forgetRequestIds: ['r1', 'r2'],
        evidence: expected.event.evidence,
      });
      expect(ledger.events.at(-1)).toEqual(recorded.event);
      expect(() => validateEvent(recorded.event)).not.toThrow();
      // The same evidence from a method that did not make the version (a worker that reloaded both from storage).
      const fresh = createSisaMethod({ store });
      try {
        const reloaded = { ...published.model, samples: [...published.model.samples] };
        expect((await fresh.recordEvidence!(trained, reloaded, { requestIds: ['r1', 'r2'], ...evidenceOf })).evidence).toEqual(expected.evidence);
      } finally {
        await fresh.release();
      }
      // A no-op is no forget: 'after' must be a later version of the same model.
      await expect(later.recordEvidence!(published.model, trained, { requestIds: ['r1'] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
      await expect(later.recordEvidence!(trained, trained, { requestIds: ['r1'] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
      await expect(later.recordEvidence!(trained, published.model, { requestIds: [] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    } finally {
      await inline.release();
      await later.release();
    }
  });
});

describe('full retrain on iris', () => {
  it('forgets exactly: the result equals training from scratch without the samples', async () => {
    const config: TrainingConfigInput = { ...irisSisaConfig(), method: 'full-retrain', shards: 1, slices: 1 };
    const ledger = new MemoryLedgerSink();
    const full = createFullRetrainMethod({ store: new MemoryCheckpointStore(), ledger });
    const model = await full.train({ modelId: 'iris-full', config, samples: irisTrain, testSet: iris.test });
    expect(model.metrics.testAccuracy).toBeGreaterThan(0.8);
    for (const forget of [[irisTrain[3].externalId], irisTrain.slice(40, 47).map((s) => s.externalId)]) {
      const outcome = await full.forget(model, { requestIds: ['r'], externalIds: forget });
      expect(outcome.affected).toEqual([{ shard: 0, fromSlice: 0 }]);
      expect(outcome.model.onnxSha256).toBe((await trainFromScratch(config, without(irisTrain, forget))).onnxSha256);
    }
    await full.release();
  });

  it('refuses a sharded config (INVALID_CONFIG)', async () => {
    const full = createFullRetrainMethod({ store: new MemoryCheckpointStore() });
    await expect(
      full.train({ modelId: 'm', config: { ...irisSisaConfig(), method: 'full-retrain' }, samples: irisTrain }),
    ).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(full.train({ modelId: 'm', config: irisSisaConfig(), samples: irisTrain })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
    await full.release();
  });
});

describe('SISA on an MNIST subset (MLP 784-32-10)', () => {
  const mnist = splitTrainTest(loadMnist({ perDigit: 40 }), { seed: 'mnist-split', testFraction: 0.25 });
  const train = commitExamples(mnist.train);
  const config = mnistSisaConfig();
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lethe-unlearning-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('forgets exactly with a file checkpoint store, for several forget sets, and reports progress', async () => {
    const progress: Progress[] = [];
    const sisa = createSisaMethod({ store: new FileCheckpointStore(dir), onProgress: (p) => progress.push(p) });
    const model = await sisa.train({ modelId: 'mnist', config, samples: train, testSet: mnist.test });
    expect(model.metrics.testAccuracy).toBeGreaterThan(0.5);
    const fractions = progress.filter((p) => p.phase === 'train').map((p) => p.fraction);
    expect(fractions.length).toBeGreaterThan(10);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);
    expect(progress[progress.length - 1]).toMatchObject({ fraction: 1, etaSeconds: 0 });

    const sets = [
      [train[0].externalId],
      train.slice(100, 105).map((s) => s.externalId),
      idsWhere(train, config, (_, slice) => slice === 2, 3),
    ];
    for (const forget of sets) {
      const outcome = await sisa.forget(model, { requestIds: ['r'], externalIds: forget });
      const reference = await trainFromScratch(config, without(train, forget));
      expect(outcome.model.onnxSha256).toBe(reference.onnxSha256);
    }
    await sisa.release();
  });

  it('publishes a vote ensemble that differs from the mean ensemble', async () => {
    const mean = await trainFromScratch({ ...config, learningRate: 0.3 }, train);
    const vote = await trainFromScratch({ ...config, learningRate: 0.3, aggregation: 'vote' }, train);
    expect(vote.onnxSha256).not.toBe(mean.onnxSha256);
    expect(vote.metrics.trainAccuracy).toBeGreaterThan(0.6);
    expect(mean.metrics.trainAccuracy).toBeGreaterThan(0.6);
  });
});

function assertJsonSafe(event: EngineEvent | object): void {
  const walk = (value: unknown, where: string): void => {
    if (value === undefined) throw new Error(`${where} is undefined`);
    if (typeof value === 'bigint') throw new Error(`${where} is a bigint`);
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${where} is ${value}`);
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${where}[${i}]`));
    else if (value && typeof value === 'object') Object.entries(value).forEach(([k, v]) => walk(v, `${where}.${k}`));
  };
  walk(event, 'event');
  expect(JSON.parse(JSON.stringify(event))).toEqual(event);
  expect(event).toMatchObject({ version: 1 });
}
