import { epochsOfSlices, hashHyperparameters, normalizeConfig, sisaEpochSchedule, TrainingConfig } from './config';
import { UnlearningError } from './errors';
import { irisSisaConfig } from './testing/factories';

/** The reference code's rounding as it is written there (sisa.py): floating point, int() truncation. */
function referenceCodeSchedule(epochs: number, slices: number): number[] {
  const avg = ((((2 * slices) / (slices + 1)) * epochs) / slices);
  return Array.from({ length: slices }, (_, sl) => Math.trunc((sl + 1) * avg) - Math.trunc(sl * avg));
}

/** Slow and obvious: epochs done by the end of slice i = how many whole epochs k fit in (i+1) * 2e/(R+1), counted one by one. */
function countedSchedule(epochs: number, slices: number): number[] {
  const doneBy = (i: number) => {
    let k = 0;
    while ((k + 1) * (slices + 1) <= 2 * epochs * i) k++;
    return k;
  };
  return Array.from({ length: slices }, (_, i) => Math.max(1, doneBy(i + 1) - doneBy(i)));
}

function errorOf(fn: () => unknown): UnlearningError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UnlearningError) return error;
    throw error;
  }
  throw new Error('expected an UnlearningError');
}

describe('sisaEpochSchedule', () => {
  it('gives slice i floor((i+1)a) - floor(i*a) epochs, a = 2e/(R+1)', () => {
    expect(sisaEpochSchedule(10, 5)).toEqual([3, 3, 4, 3, 3]); // a = 10/3
    expect(sisaEpochSchedule(6, 5)).toEqual([2, 2, 2, 2, 2]);
    expect(sisaEpochSchedule(7, 4)).toEqual([2, 3, 3, 3]); // a = 2.8
    expect(sisaEpochSchedule(40, 3)).toEqual([20, 20, 20]);
    expect(sisaEpochSchedule(5, 1)).toEqual([5]); // one slice: all the epochs (a full retrain's schedule)
  });

  it("equals the reference code's schedule where its floating point lands on the exact value", () => {
    for (const slices of [2, 3, 4, 5, 10])
      for (let epochs = Math.ceil((slices + 1) / 2); epochs <= 100; epochs++)
        expect([epochs, slices, sisaEpochSchedule(epochs, slices)]).toEqual([epochs, slices, referenceCodeSchedule(epochs, slices)]);
  });

  it('computes the floors exactly where the reference rounds 2e(i+1)/(R+1) just below an integer', () => {
    // e = 21, R = 8: a = 14/3, and 3a = 14 exactly; the reference's float gives 13.999..., moving an epoch from slice 2 to 3.
    expect(referenceCodeSchedule(21, 8).slice(2, 4)).toEqual([4, 5]);
    expect(sisaEpochSchedule(21, 8).slice(2, 4)).toEqual([5, 4]);
  });

  it('trains every slice at least 1 epoch where the share rounds to 0 (2e < R+1)', () => {
    expect(referenceCodeSchedule(1, 5)).toEqual([0, 0, 1, 0, 0]); // the reference: slices 3 and 4 would never be learned
    expect(sisaEpochSchedule(1, 5)).toEqual([1, 1, 1, 1, 1]);
    expect(sisaEpochSchedule(2, 5)).toEqual([1, 1, 1, 1, 1]); // pure rounding: [0, 1, 1, 0, 1]
    expect(sisaEpochSchedule(1, 3)).toEqual([1, 1, 1]);
  });

  it('matches a slow counting implementation, and costs about e epochs over the shard once 2e >= R+1', () => {
    for (let slices = 1; slices <= 24; slices++) {
      for (let epochs = 1; epochs <= 60; epochs++) {
        const schedule = sisaEpochSchedule(epochs, slices);
        expect(schedule).toEqual(countedSchedule(epochs, slices));
        if (2 * epochs < slices + 1) continue;
        expect(Math.min(...schedule)).toBeGreaterThanOrEqual(1);
        expect(schedule.reduce((a, b) => a + b, 0)).toBe(Math.floor((2 * epochs * slices) / (slices + 1)));
        // Slice r trains on (r+1)/R of the shard; unrounded, a(R+1)/2 = e epochs over it. The floors move it by less than 1.
        const cost = schedule.reduce((sum, e, r) => sum + (e * (r + 1)) / slices, 0);
        expect(Math.abs(cost - epochs)).toBeLessThan(1);
      }
    }
  });
});

describe('normalizeConfig: epochsPerSlice', () => {
  it("resolves SISA's schedule by default, one number for every slice, or an array of R as given", () => {
    expect(normalizeConfig(irisSisaConfig({ epochs: 10, slices: 5 })).epochsPerSlice).toEqual([3, 3, 4, 3, 3]);
    expect(normalizeConfig(irisSisaConfig({ epochs: 10, slices: 5, epochsPerSlice: 10 })).epochsPerSlice).toEqual([10, 10, 10, 10, 10]);
    expect(normalizeConfig(irisSisaConfig({ slices: 3, epochsPerSlice: [1, 2, 3] })).epochsPerSlice).toEqual([1, 2, 3]);
    const full = normalizeConfig({ ...irisSisaConfig(), method: 'full-retrain', shards: 1, slices: 1 });
    expect(full.epochsPerSlice).toEqual([40]);
  });

  it('resolves a resolved config to itself (a manifest config replays as it is)', () => {
    const once = normalizeConfig(irisSisaConfig({ epochs: 7, slices: 4 }));
    expect(normalizeConfig(once)).toEqual(once);
  });

  it.each([
    ['zero', 0, 'epochsPerSlice must be an integer in [1, 10000], got 0'],
    ['a fraction', 1.5, 'epochsPerSlice must be an integer in [1, 10000], got 1.5'],
    ['a string', '3', 'epochsPerSlice must be an integer in [1, 10000], got 3'],
    ['too many entries', [1, 1, 1, 1], 'epochsPerSlice must have one entry per slice (3), got 4'],
    ['a zero entry', [1, 0, 1], 'epochsPerSlice[1] must be an integer in [1, 10000], got 0'],
  ])('refuses %s with INVALID_CONFIG naming the field', (_, epochsPerSlice, message) => {
    const error = errorOf(() => normalizeConfig(irisSisaConfig({ epochsPerSlice: epochsPerSlice as number })));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(message);
  });

  it('refuses a schedule for full-retrain other than its epochs', () => {
    const full = { ...irisSisaConfig(), method: 'full-retrain' as const, shards: 1, slices: 1 };
    expect(errorOf(() => normalizeConfig({ ...full, epochsPerSlice: 3 })).message).toMatch(/^epochsPerSlice is for sisa/);
    expect(normalizeConfig({ ...full, epochsPerSlice: 40 }).epochsPerSlice).toEqual([40]);
  });
});

describe('the hyperparameter hash and the schedule', () => {
  // hashHyperparameters(normalizeConfig(irisSisaConfig())) before epochsPerSlice existed (every slice 40 epochs).
  const HASH_BEFORE_THE_FIELD = 'd7bf30762c1c37473aaf4d61a3002c48f94e3c1e41d3ded41e0f572a310ae6d5';
  const FULL_RETRAIN_HASH_BEFORE_THE_FIELD = '2dbf9ba3c61b4932289874b9bf8b48558ac99a3792c1d41241448d7f17b4fc76';

  it('keeps the hash of a config stored before the field, which trains every slice `epochs` epochs', () => {
    const stored = normalizeConfig(irisSisaConfig());
    delete stored.epochsPerSlice; // as engine_state and manifests of older versions hold it
    expect(hashHyperparameters(stored)).toBe(HASH_BEFORE_THE_FIELD);
    expect(epochsOfSlices(stored)).toEqual([40, 40, 40]);
    // The same schedule written out hashes the same: one schedule, one hash.
    expect(hashHyperparameters(normalizeConfig(irisSisaConfig({ epochsPerSlice: 40 })))).toBe(HASH_BEFORE_THE_FIELD);
    const full = normalizeConfig({ ...irisSisaConfig(), method: 'full-retrain', shards: 1, slices: 1 });
    expect(hashHyperparameters(full)).toBe(FULL_RETRAIN_HASH_BEFORE_THE_FIELD);
  });

  it('covers any other schedule', () => {
    const paper: TrainingConfig = normalizeConfig(irisSisaConfig());
    expect(paper.epochsPerSlice).toEqual([20, 20, 20]);
    const hashes = new Set(
      [paper, normalizeConfig(irisSisaConfig({ epochsPerSlice: [20, 20, 21] })), normalizeConfig(irisSisaConfig({ epochsPerSlice: [21, 20, 20] }))].map(
        hashHyperparameters,
      ),
    );
    hashes.add(HASH_BEFORE_THE_FIELD);
    expect(hashes.size).toBe(4);
  });
});
