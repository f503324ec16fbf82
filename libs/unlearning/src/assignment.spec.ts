import fc from 'fast-check';
import { orderEpoch, placeSample, planShards, removeFromPlan } from './assignment';
import { commitExample } from './testing/factories';

const ids = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 60 });

function samplesOf(externalIds: string[]) {
  return externalIds.map((externalId, i) => commitExample({ externalId, features: [i], label: i % 2 }));
}

describe('shard and slice assignment', () => {
  it('places a sample by seed and externalId only', () => {
    const a = placeSample('seed', 'sample-7', 10, 5);
    const b = placeSample('seed', 'sample-7', 10, 5);
    expect(a).toEqual(b);
    expect(a.shard).toBeGreaterThanOrEqual(0);
    expect(a.shard).toBeLessThan(10);
    expect(a.slice).toBeLessThan(5);
    const moved = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'].some((seed) => placeSample(seed, 'sample-7', 10, 5).shard !== a.shard);
    expect(moved).toBe(true);
  });

  it('spreads samples over all shards and slices', () => {
    const plan = planShards(samplesOf(Array.from({ length: 2000 }, (_, i) => `id-${i}`)), 'seed', 4, 5);
    for (const shard of plan.shards) for (const slice of shard.slices) expect(slice.length).toBeGreaterThan(50);
  });

  it('plans every sample where placeSample (the documented key) puts it, whatever its id', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, unit: 'grapheme' }), { minLength: 1, maxLength: 40 }), (externalIds) => {
        const plan = planShards(samplesOf(externalIds), 'seed-é', 4, 3);
        plan.shards.forEach((shard) =>
          shard.slices.forEach((slice, r) =>
            slice.forEach((i) => {
              const placed = placeSample('seed-é', externalIds[i], 4, 3);
              expect([placed.shard, placed.slice, placed.key.toString('hex')]).toEqual([shard.shard, r, plan.keys[i].toString('hex')]);
            }),
          ),
        );
      }),
    );
  });

  it('does not depend on upload order', () => {
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), (externalIds, shards, slices) => {
        const samples = samplesOf(externalIds);
        const forward = planShards(samples, 'seed', shards, slices);
        const reversed = planShards([...samples].reverse(), 'seed', shards, slices);
        const byId = (plan: typeof forward, list: typeof samples) =>
          plan.shards.map((s) => s.slices.map((slice) => slice.map((i) => list[i].externalId)));
        expect(byId(reversed, [...samples].reverse())).toEqual(byId(forward, samples));
      }),
    );
  });

  it('keeps every other sample in place, in the same relative order, when samples are removed', () => {
    fc.assert(
      fc.property(
        ids,
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (externalIds, shards, slices, picks) => {
          const samples = samplesOf(externalIds);
          const removed = new Set(picks.map((p) => externalIds[p % externalIds.length]));
          const kept = samples.filter((s) => !removed.has(s.externalId));
          const full = planShards(samples, 'seed', shards, slices);
          const partial = planShards(kept, 'seed', shards, slices);
          full.shards.forEach((shard, s) =>
            shard.slices.forEach((slice, r) => {
              const expected = slice.map((i) => samples[i].externalId).filter((id) => !removed.has(id));
              expect(partial.shards[s].slices[r].map((i) => kept[i].externalId)).toEqual(expected);
            }),
          );
          // Epoch orders: the survivors' order is the full order with the removed ids left out.
          const all = samples.map((_, i) => i);
          const fullOrder = Array.from(orderEpoch('seed', 0, 0, 3, all, full.keys), (i) => samples[i].externalId);
          const keptOrder = Array.from(
            orderEpoch(
              'seed',
              0,
              0,
              3,
              kept.map((_, i) => i),
              partial.keys,
            ),
            (i) => kept[i].externalId,
          );
          expect(keptOrder).toEqual(fullOrder.filter((id) => !removed.has(id)));
        },
      ),
    );
  });

  it('derives the plan of the survivors from the full plan (removeFromPlan = planShards of the survivors)', () => {
    fc.assert(
      fc.property(
        ids,
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (externalIds, shards, slices, picks) => {
          const samples = samplesOf(externalIds);
          const removed = new Set(picks.map((p) => p % externalIds.length));
          const newIndexOf = new Int32Array(samples.length);
          let next = 0;
          samples.forEach((_, i) => (newIndexOf[i] = removed.has(i) ? -1 : next++));
          const kept = samples.filter((_, i) => !removed.has(i));
          const derived = removeFromPlan(planShards(samples, 'seed', shards, slices), newIndexOf);
          const direct = planShards(kept, 'seed', shards, slices);
          expect(derived.shards).toEqual(direct.shards);
          expect(derived.keys.map((k) => k.toString('hex'))).toEqual(direct.keys.map((k) => k.toString('hex')));
        },
      ),
    );
    expect(() => removeFromPlan(planShards(samplesOf(['a', 'b']), 'seed', 1, 1), new Int32Array(3))).toThrow(RangeError);
  });

  it('shuffles differently from epoch to epoch', () => {
    const samples = samplesOf(Array.from({ length: 50 }, (_, i) => `id-${i}`));
    const plan = planShards(samples, 'seed', 1, 1);
    const members = plan.shards[0].slices[0];
    expect(orderEpoch('seed', 0, 0, 0, members, plan.keys)).not.toEqual(orderEpoch('seed', 0, 0, 1, members, plan.keys));
    expect([...orderEpoch('seed', 0, 0, 0, members, plan.keys)].sort((a, b) => a - b)).toEqual([...members].sort((a, b) => a - b));
  });
});
