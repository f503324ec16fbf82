/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import {
  MemoryCheckpointStore,
  createSisaMethod,
  loadIris,
  normalizeConfig,
  placeSample,
  type AffectedShard,
  type Sample,
  type TrainingConfigInput,
} from '@lethe/unlearning';
import { fromScratchSha256sInAnotherProcess, type FromScratchJob } from '../support/from-scratch';

/**
 * Exactness where users go: settings the API and the engine offer beyond the defaults, each trained, then
 * forgotten from (resuming from a checkpoint), and every published version compared with a SISA model trained
 * from scratch on the same retained samples in a separate Node process. No database: only the engine.
 */

function commit(examples: { externalId: string; features: number[]; label: number }[]): Sample[] {
  return examples.map((e) => ({ ...e, features: [...e.features], commitment: createHash('sha256').update(`exactness|${e.externalId}`).digest('hex') }));
}

/** Synthetic: 4 Gaussian-ish blobs in 24 dimensions (a seeded xorshift), 120 samples per class. Not a real dataset. */
function synthetic(): Sample[] {
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const centers = Array.from({ length: 4 }, () => Array.from({ length: 24 }, () => next() * 2 - 1));
  return commit(
    Array.from({ length: 480 }, (_, i) => {
      const label = i % 4;
      return { externalId: `syn-${i}`, label, features: centers[label].map((c) => c + (next() + next() + next() - 1.5) * 0.8) };
    }),
  );
}

const iris = commit(loadIris().map((e) => ({ ...e, features: [...e.features] })));
const blobs = synthetic();

/** `count` ids of samples placed in (shard, slice). */
function idsIn(samples: readonly Sample[], config: TrainingConfigInput, shard: number, slice: number, count = 1): string[] {
  const ids = samples
    .filter((s) => {
      const p = placeSample(String(config.seed), s.externalId, config.shards ?? 1, config.slices ?? 1);
      return p.shard === shard && p.slice === slice;
    })
    .slice(0, count)
    .map((s) => s.externalId);
  if (ids.length < count) throw new Error(`fewer than ${count} samples in shard ${shard} slice ${slice}`);
  return ids;
}

interface Case {
  name: string;
  config: TrainingConfigInput;
  samples: Sample[];
  /** Forget requests served one after the other (each set of ids from the previous version). */
  forgets: (config: TrainingConfigInput, samples: Sample[]) => string[][];
}

const irisBase = { model: 'logistic-regression', numFeatures: 4, numClasses: 3, batchSize: 4, learningRate: 0.1, method: 'sisa' } as const;
const blobBase = { method: 'sisa', model: 'mlp', numFeatures: 24, numClasses: 4, batchSize: 16, learningRate: 0.1 } as const;

const CASES: Case[] = [
  {
    name: 'two training threads',
    config: { ...blobBase, hiddenLayers: [32], shards: 2, slices: 3, epochs: 6, seed: 'threads-2', threads: 2 },
    samples: blobs,
    forgets: (c, s) => [idsIn(s, c, 0, 2)],
  },
  {
    name: 'vote aggregation',
    config: { ...irisBase, model: 'mlp', hiddenLayers: [8], shards: 3, slices: 2, epochs: 6, seed: 'vote', aggregation: 'vote' },
    samples: iris,
    forgets: (c, s) => [idsIn(s, c, 1, 1)],
  },
  {
    name: 'weight decay',
    config: { ...irisBase, shards: 3, slices: 3, epochs: 6, seed: 'decay', weightDecay: 0.01 },
    samples: iris,
    forgets: (c, s) => [idsIn(s, c, 2, 1)],
  },
  {
    name: 'two hidden layers',
    config: { ...blobBase, hiddenLayers: [16, 8], shards: 2, slices: 2, epochs: 4, seed: 'deep' },
    samples: blobs,
    forgets: (c, s) => [idsIn(s, c, 1, 1)],
  },
  {
    name: "SISA's epochs per slice, e = 7 over R = 4 slices ([2, 3, 3, 3])",
    config: { ...irisBase, shards: 3, slices: 4, epochs: 7, seed: 'e-prime' },
    samples: iris,
    forgets: (c, s) => [idsIn(s, c, 0, 2)],
  },
  {
    name: "SISA's epochs per slice where every share rounds to at most 1, e = 1 over R = 5 ([1, 1, 1, 1, 1])",
    config: { ...irisBase, shards: 2, slices: 5, epochs: 1, seed: 'e-prime-min' },
    samples: iris,
    forgets: (c, s) => [idsIn(s, c, 1, 3)],
  },
  {
    name: 'three forgets in a row',
    config: { ...irisBase, model: 'mlp', hiddenLayers: [8], shards: 3, slices: 3, epochs: 6, seed: 'three' },
    samples: iris,
    forgets: (c, s) => [idsIn(s, c, 0, 2), [...idsIn(s, c, 1, 1), ...idsIn(s, c, 2, 2)], s.slice(100, 105).map((x) => x.externalId)],
  },
];

interface Trained {
  versions: string[];
  affected: AffectedShard[][];
  jobs: FromScratchJob[];
}

describe('exactness: each unlearned version equals a from-scratch training in another process', () => {
  const trained = new Map<string, Trained>();
  const fromScratch = new Map<string, string[]>();
  /** The two-thread case trained from scratch with one thread: the comparison must see the difference. */
  let oneThread: string;

  beforeAll(async () => {
    const jobs: FromScratchJob[] = [];
    for (const c of CASES) {
      const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
      try {
        let model = await sisa.train({ modelId: c.name, config: c.config, samples: c.samples });
        const result: Trained = { versions: [model.onnxSha256], affected: [], jobs: [{ config: c.config, samples: c.samples }] };
        let retained = c.samples;
        for (const [i, ids] of c.forgets(c.config, c.samples).entries()) {
          const outcome = await sisa.forget(model, { requestIds: [`r${i}`], externalIds: ids });
          model = outcome.model;
          const gone = new Set(ids);
          retained = retained.filter((s) => !gone.has(s.externalId));
          result.versions.push(model.onnxSha256);
          result.affected.push(outcome.affected);
          result.jobs.push({ config: c.config, samples: retained });
        }
        trained.set(c.name, result);
        jobs.push(...result.jobs);
      } finally {
        await sisa.release();
      }
    }
    const hashes = await fromScratchSha256sInAnotherProcess([...jobs, { config: { ...CASES[0].config, threads: 1 }, samples: CASES[0].samples }]);
    for (const c of CASES) fromScratch.set(c.name, hashes.splice(0, trained.get(c.name)!.jobs.length));
    [oneThread] = hashes;
  }, 240_000);

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const { versions, affected } = trained.get(c.name)!;
    expect(versions).toEqual(fromScratch.get(c.name));
    // Every forget changed the model, and the first resumed from a checkpoint (not slice 0): the path under test.
    expect(new Set(versions).size).toBe(versions.length);
    expect(affected[0].some((a) => a.fromSlice > 0)).toBe(true);
  });

  it('would see a training that ignored the thread count: one thread gives other bytes than two', () => {
    expect(oneThread).toMatch(/^[0-9a-f]{64}$/);
    expect(oneThread).not.toBe(trained.get(CASES[0].name)!.versions[0]);
  });

  it('trains the schedules it claims to', () => {
    expect(normalizeConfig(CASES[4].config).epochsPerSlice).toEqual([2, 3, 3, 3]);
    expect(normalizeConfig(CASES[5].config).epochsPerSlice).toEqual([1, 1, 1, 1, 1]);
    expect(trained.get(CASES[6].name)!.versions).toHaveLength(4);
  });
});
