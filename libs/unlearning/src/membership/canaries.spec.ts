import { loadIris } from '../datasets';
import { commitExamples } from '../testing/factories';
import { isCanary, makeCanaries } from './canaries';
import { checkMembershipOptions } from './options';

describe('makeCanaries', () => {
  const pool = commitExamples(loadIris());

  it('draws each feature from that column of a real sample and a uniform label, the same for the same seed', () => {
    const { injected, keptOut } = makeCanaries(pool, { injected: 30, keptOut: 100 }, 3, 'seed');
    expect(injected).toHaveLength(30);
    expect(keptOut).toHaveLength(100);
    const all = [...injected, ...keptOut];
    expect(new Set(all.map((c) => c.externalId)).size).toBe(130);
    expect(new Set(all.map((c) => c.commitment)).size).toBe(130);
    for (const canary of all) {
      expect(isCanary(canary)).toBe(true);
      expect(canary.commitment).toMatch(/^[0-9a-f]{64}$/);
      canary.features.forEach((value, f) => expect(pool.some((s) => Math.fround(s.features[f]) === value)).toBe(true));
    }
    expect(new Set(all.map((c) => c.label))).toEqual(new Set([0, 1, 2]));
    // Not copies of real flowers: the features of one canary come from several.
    expect(all.filter((c) => pool.some((s) => s.features.every((v, f) => Math.fround(v) === c.features[f]))).length).toBeLessThan(10);
    expect(makeCanaries(pool, { injected: 30, keptOut: 100 }, 3, 'seed')).toEqual({ injected, keptOut });
    expect(makeCanaries(pool, { injected: 30, keptOut: 100 }, 3, 'other').injected[0].features).not.toEqual(injected[0].features);
    expect(pool.some(isCanary)).toBe(false);
  });

  it('refuses data with an id in the canaries\' reserved prefix', () => {
    const clash = [...pool, { ...pool[0], externalId: '\u0000lethe-canary-7' }];
    expect(() => makeCanaries(clash, { injected: 20, keptOut: 100 }, 3, 's')).toThrow('uses the prefix reserved for canaries');
  });
});

describe('checkMembershipOptions', () => {
  it('fills the defaults and refuses counts out of range, naming the field', () => {
    expect(checkMembershipOptions({ shadowModels: 16 })).toEqual({ shadowModels: 16, canaries: 0, bootstrap: 1000 });
    expect(() => checkMembershipOptions({ shadowModels: 3 })).toThrow('membership.shadowModels must be an integer in [4, 256], got 3');
    expect(() => checkMembershipOptions({ shadowModels: 257 })).toThrow('membership.shadowModels must be an integer in [4, 256]');
    expect(() => checkMembershipOptions({ shadowModels: 8.5 })).toThrow('membership.shadowModels');
    expect(() => checkMembershipOptions({ shadowModels: 8, canaries: 1001 })).toThrow('membership.canaries must be 0 or an integer in [100, 1000], got 1001');
    expect(() => checkMembershipOptions({ shadowModels: 8, canaries: 99 })).toThrow('membership.canaries must be 0 or an integer in [100, 1000], got 99');
    expect(checkMembershipOptions({ shadowModels: 8, canaries: 0 }).canaries).toBe(0);
    expect(() => checkMembershipOptions({ shadowModels: 8, bootstrap: 10 })).toThrow('membership.bootstrap');
  });
});
