/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { validateEvent } from '@lethe/events';
import { planShards } from '../assignment';
import { MemoryCheckpointStore } from '../checkpoint-store';
import { epochsOfSlices, normalizeConfig, TrainingConfigInput } from '../config';
import { loadMnist, splitTrainTest } from '../datasets';
import { MemoryLedgerSink, ModelPublishedEvent } from '../events';
import { createFullRetrainMethod } from '../full-retrain';
import { TrainedModel } from '../model';
import { Sample } from '../samples';
import { createSisaMethod } from '../sisa';
import { commitExamples, mnistSisaConfig } from '../testing/factories';
import { rdpEpsilon } from './rdp-accountant';
import { resolvePrivacy } from './privacy-config';
import { RATE_DENOMINATOR, samplePoissonBatches } from './poisson-sampling';

const mnist = splitTrainTest(loadMnist({ perDigit: 50 }), { seed: 'dp-split', testFraction: 0.2 });
const train = commitExamples(mnist.train);
const NOISE_SEED = 'ab'.repeat(32);

function dpConfig(overrides: Partial<TrainingConfigInput> = {}, request = { epsilon: 4, delta: 1e-4, clipNorm: 1 }): TrainingConfigInput {
  const base = mnistSisaConfig({ shards: 2, slices: 3, epochs: 6, batchSize: 32, learningRate: 0.5, seed: 'dp-seed', ...overrides });
  const epochsPerSlice = epochsOfSlices(normalizeConfig(base));
  const privacy = resolvePrivacy(request, { trainingSamples: train.length, shards: base.shards ?? 1, batchSize: base.batchSize as number, epochsPerSlice }, NOISE_SEED);
  return { ...base, epochsPerSlice, privacy };
}

async function trainFromScratch(config: TrainingConfigInput, samples: readonly Sample[]): Promise<TrainedModel> {
  const method = config.method === 'sisa' ? createSisaMethod({ store: new MemoryCheckpointStore() }) : createFullRetrainMethod({ store: new MemoryCheckpointStore() });
  try {
    return await method.train({ modelId: 'reference', config, samples });
  } finally {
    await method.release();
  }
}

describe('DP-SGD training through the engine (SISA and full)', () => {
  const config = dpConfig();
  const ledger = new MemoryLedgerSink();
  const sisa = createSisaMethod({ store: new MemoryCheckpointStore(), ledger });
  let model: TrainedModel;

  beforeAll(async () => {
    model = await sisa.train({ modelId: 'dp-sisa', config, samples: train, testSet: mnist.test });
  });
  afterAll(() => sisa.release());

  it('publishes its guarantee in MODEL_PUBLISHED.privacy: the accountant ε of every step a slice-0 sample may join, within the target', () => {
    const published = ledger.events.find((e) => e.type === 'MODEL_PUBLISHED') as ModelPublishedEvent;
    validateEvent(published);
    const privacy = config.privacy!;
    const steps = privacy.stepsPerEpoch * (config.epochsPerSlice as number[]).reduce((a, b) => a + b, 0);
    expect(published.privacy).toEqual({
      mechanism: 'dp-sgd',
      epsilon: rdpEpsilon({ sampleRate: privacy.sampleRate, noiseMultiplier: privacy.noiseMultiplier, steps }, 1e-4).epsilon,
      delta: 1e-4,
      noiseMultiplier: privacy.noiseMultiplier,
      sampleRate: privacy.sampleRate,
      steps,
      clipNorm: 1,
      accountant: 'rdp',
    });
    expect(published.privacy!.epsilon).toBeLessThanOrEqual(4);
    expect(published.privacy!.epsilon).toBeGreaterThan(3.9);
    // 400 samples over 2 shards at an expected batch of 32: ceil(400 / 64) = 7 steps per epoch
    expect(privacy.stepsPerEpoch).toBe(Math.ceil(train.length / 64));
  });

  it('learns despite the noise (test accuracy well above chance), and its bytes are not those of plain SGD nor of another noise seed', async () => {
    expect(model.metrics.testAccuracy).toBeGreaterThan(0.3);
    const plain = await trainFromScratch({ ...config, privacy: undefined }, train);
    const otherNoise = await trainFromScratch({ ...config, privacy: { ...config.privacy!, noiseSeed: 'cd'.repeat(32) } }, train);
    expect(plain.onnxSha256).not.toBe(model.onnxSha256);
    expect(otherNoise.onnxSha256).not.toBe(model.onnxSha256);
  });

  it('replays to the same bytes, and forgetting publishes the bytes of a DP training from scratch without the samples', async () => {
    expect((await trainFromScratch(config, [...train].reverse())).onnxSha256).toBe(model.onnxSha256);
    const forgotten = [train[3].externalId, train[150].externalId];
    const { model: after, event } = await sisa.forget(model, { requestIds: ['r1'], externalIds: forgotten });
    const survivors = train.filter((s) => !forgotten.includes(s.externalId));
    expect((await trainFromScratch(config, survivors)).onnxSha256).toBe(after.onnxSha256);
    expect(event.affected.length).toBeLessThanOrEqual(2);
    const republished = ledger.events.filter((e) => e.type === 'MODEL_PUBLISHED') as ModelPublishedEvent[];
    expect(republished[1].privacy).toEqual(republished[0].privacy);
  });

  it('full retraining with DP-SGD forgets exactly too', async () => {
    const full = dpConfig({ method: 'full-retrain', shards: 1, slices: 1, epochsPerSlice: undefined, epochs: 3 });
    const method = createFullRetrainMethod({ store: new MemoryCheckpointStore() });
    try {
      const v1 = await method.train({ modelId: 'dp-full', config: full, samples: train });
      const { model: v2 } = await method.forget(v1, { requestIds: ['r'], externalIds: [train[10].externalId] });
      expect((await trainFromScratch(full, train.filter((_, i) => i !== 10))).onnxSha256).toBe(v2.onnxSha256);
      expect(v2.onnxSha256).not.toBe(v1.onnxSha256);
    } finally {
      await method.release();
    }
  });
});

describe('Poisson sampling', () => {
  const plan = planShards(train, 'poisson', 1, 1);
  const members = plan.shards[0].slices[0];

  it('samples each member at the rate asked, independently of the other members', () => {
    const rate = Math.ceil(0.05 * RATE_DENOMINATOR) / RATE_DENOMINATOR;
    const steps = 400;
    const batches = samplePoissonBatches(members, plan.keys, steps, rate, 'label');
    const total = batches.reduce((n, b) => n + b.length, 0);
    const expected = members.length * steps * rate; // 8000
    // Binomial(160000, 0.05): standard deviation 87; 5 of them either way
    expect(Math.abs(total - expected)).toBeLessThan(5 * Math.sqrt(expected * (1 - rate)));
    const sizes = batches.map((b) => b.length);
    expect(Math.min(...sizes)).toBeLessThan(Math.max(...sizes)); // the batch size varies: it is not a fixed-size sample
    // a member's steps do not depend on which other members there are
    const without = members.filter((_, i) => i % 3 !== 0);
    const thinned = samplePoissonBatches(without, plan.keys, steps, rate, 'label');
    const kept = new Set(without);
    batches.forEach((batch, step) => expect(Array.from(thinned[step])).toEqual(Array.from(batch).filter((m) => kept.has(m))));
    // and another label draws other steps
    expect(samplePoissonBatches(members, plan.keys, steps, rate, 'other')).not.toEqual(batches);
  });

  it('refuses a rate that is not k / 2^53', () => {
    expect(() => samplePoissonBatches(members, plan.keys, 1, 0.1, 'label')).toThrow(/2\^53/);
  });
});
