/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import fc from 'fast-check';
import { placeSample } from './assignment';
import { computeBatchRoot } from './batch-root';
import { MemoryCheckpointStore } from './checkpoint-store';
import { loadIris } from './datasets';
import { batchKey, checkpointsOf, findUnreferencedCheckpoints, listBatchMembers } from './lineage';
import { ShardRecord, TrainedModel } from './model';
import { createFullRetrainMethod } from './full-retrain';
import { createSisaMethod } from './sisa';
import { commitExamples, irisSisaConfig } from './testing/factories';

const samples = commitExamples(loadIris());

/** A lineage of `shards` shards whose slice checkpoints are the given names. */
const lineage = (...shards: string[][]): ShardRecord[] =>
  shards.map((names, shard) => ({
    shard,
    sampleCount: names.length,
    slices: names.map((checkpoint, slice) => ({ slice, count: 1, batchRoot: 'r', checkpoint, weightsSha256: 'w' })),
  }));

describe('findUnreferencedCheckpoints (reference counting over lineages)', () => {
  it('keeps what a live version shares, deletes what only retired versions reference, each address once, sorted', () => {
    const v1 = lineage(['a0', 'a1', 'a2'], ['b0', 'b1', 'b2']);
    const v2 = lineage(['a0', 'x1', 'x2'], ['b0', 'b1', 'b2']); // shard 0 retrained from slice 1
    const v3 = lineage(['a0', 'x1', 'x2'], ['y0', 'y1', 'y2']); // then shard 1 from slice 0
    expect(findUnreferencedCheckpoints([v1], [v2])).toEqual(['a1', 'a2']);
    expect(findUnreferencedCheckpoints([v1, v2], [v3])).toEqual(['a1', 'a2', 'b0', 'b1', 'b2']);
  });

  it('keeps a checkpoint another model with the same hyperparameters still uses', () => {
    const retired = lineage(['s0', 's1']);
    const otherModelLive = lineage(['s0', 's1']);
    expect(findUnreferencedCheckpoints([retired], [lineage(['s0', 'n1']), otherModelLive])).toEqual([]);
  });

  it('deletes nothing when nothing is retired, and everything of a model none of whose versions is live', () => {
    expect(findUnreferencedCheckpoints([], [lineage(['a', 'b'])])).toEqual([]);
    expect(findUnreferencedCheckpoints([lineage(['b', 'a']), lineage(['b', 'c'])], [])).toEqual(['a', 'b', 'c']);
  });

  it('returns exactly the retired addresses with no live reference (random lineages)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
    const lineages = fc.array(fc.array(fc.array(name, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), { maxLength: 4 });
    fc.assert(
      fc.property(lineages, lineages, (retired, live) => {
        const dead = findUnreferencedCheckpoints(
          retired.map((l) => lineage(...l)),
          live.map((l) => lineage(...l)),
        );
        const liveSet = new Set(live.flat(2));
        const expected = [...new Set(retired.flat(2).filter((c) => !liveSet.has(c)))].sort();
        expect(dead).toEqual(expected);
      }),
    );
  });
});

describe('lineages of real versions: what forgetting one sample leaves unreferenced', () => {
  const config = irisSisaConfig({ epochs: 2 });

  it('SISA: the forgotten slice and those after it in its shard, never the prefix or the other shards', async () => {
    const store = new MemoryCheckpointStore();
    const sisa = createSisaMethod({ store });
    try {
      const v1 = await sisa.train({ modelId: 'lineage', config, samples });
      const target = samples.find((s) => {
        const p = placeSample(config.seed as string, s.externalId, 3, 3);
        return p.shard === 1 && p.slice === 1;
      })!;
      const { model: v2 } = await sisa.forget(v1, { requestIds: ['r'], externalIds: [target.externalId] });
      const dead = findUnreferencedCheckpoints([v1.shards], [v2.shards]);
      expect(dead).toEqual([v1.shards[1].slices[1].checkpoint, v1.shards[1].slices[2].checkpoint].sort());
      // What stays: shard 1's slice 0 (it never saw the sample) and the two other shards, shared by v2.
      const kept = checkpointsOf(v1.shards).filter((c) => !dead.includes(c));
      expect(kept).toHaveLength(7);
      for (const c of kept) expect(checkpointsOf(v2.shards)).toContain(c);
      // Every address left unreferenced is in the store until it is deleted (positive control).
      for (const c of dead) expect(await store.has(c)).toBe(true);
    } finally {
      await sisa.release();
    }
  });

  it('full retraining: the old version’s one checkpoint goes, the new one stays', async () => {
    const full = createFullRetrainMethod({ store: new MemoryCheckpointStore() });
    try {
      const v1 = await full.train({ modelId: 'lineage-full', config: { ...config, method: 'full-retrain', shards: 1, slices: 1 }, samples });
      const { model: v2 } = await full.forget(v1, { requestIds: ['r'], externalIds: [samples[0].externalId] });
      expect(findUnreferencedCheckpoints([v1.shards], [v2.shards])).toEqual(checkpointsOf(v1.shards));
      expect(checkpointsOf(v2.shards)).not.toEqual(checkpointsOf(v1.shards));
    } finally {
      await full.release();
    }
  });
});

describe('listBatchMembers', () => {
  let model: TrainedModel;
  beforeAll(async () => {
    const sisa = createSisaMethod({ store: new MemoryCheckpointStore() });
    try {
      model = await sisa.train({ modelId: 'batches', config: irisSisaConfig({ epochs: 1 }), samples });
    } finally {
      await sisa.release();
    }
  });

  it("gives each slice's commitments in the order its batch root hashes them, every sample once", () => {
    const batches = listBatchMembers(model);
    expect(batches).toHaveLength(9);
    for (const b of batches) expect(computeBatchRoot(b.commitments)).toBe(model.shards[b.shard].slices[b.slice].batchRoot);
    expect(batches.flatMap((b) => b.commitments).sort()).toEqual(samples.map((s) => s.commitment).sort());
    expect(listBatchMembers(model, new Set([batchKey(2, 1)])).map((b) => [b.shard, b.slice])).toEqual([[2, 1]]);
  });

  it('refuses a version whose recorded root its samples do not give', () => {
    const tampered = { ...model, samples: model.samples.slice(1) };
    expect(() => listBatchMembers(tampered)).toThrow(/hash to batch root/);
  });
});
