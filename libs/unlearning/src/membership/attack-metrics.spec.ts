import { computeMembershipAuc } from '../metrics';
import { SeededRandom } from '../random';
import { chanceLevels, flaggedAt1pctFpr, FPR_LEVELS, summarizeAttack } from './attack-metrics';

/** The slow way: every threshold (each score, and below all), the best TPR among those within the FPR budget. */
function slowTprAt(members: number[], nonMembers: number[], fpr: number): number {
  const allowed = Math.floor(fpr * nonMembers.length + 1e-9);
  let best = 0;
  for (const t of [Infinity, ...members, ...nonMembers, -Infinity]) {
    const falsePositives = nonMembers.filter((s) => s > t).length;
    if (falsePositives <= allowed) best = Math.max(best, members.filter((s) => s > t).length / members.length);
  }
  return best;
}

function draw(random: SeededRandom, count: number, shift: number, grid: number): number[] {
  // Rounded to a grid so that ties occur, as they do with scores of models pinned at full confidence.
  return Array.from({ length: count }, () => Math.round((random.nextGaussian() + shift) * grid) / grid);
}

describe('summarizeAttack', () => {
  it('gives the TPR at each FPR level and the AUC that a slow enumeration gives, ties included, on random scores', () => {
    const random = new SeededRandom('attack-metrics');
    for (let trial = 0; trial < 40; trial++) {
      const members = draw(random, 20 + Math.floor(random.nextFloat() * 200), random.nextFloat() * 2, trial % 2 ? 4 : 1000);
      const nonMembers = draw(random, 100 + Math.floor(random.nextFloat() * 1500), 0, trial % 2 ? 4 : 1000);
      const figures = summarizeAttack(members, nonMembers, `trial ${trial}`, 100);
      expect(figures.tprAt1pctFpr).toBeCloseTo(slowTprAt(members, nonMembers, FPR_LEVELS.tprAt1pctFpr), 4);
      if (nonMembers.length >= 1000) expect(figures.tprAt01pctFpr).toBeCloseTo(slowTprAt(members, nonMembers, FPR_LEVELS.tprAt01pctFpr), 4);
      else expect(figures.tprAt01pctFpr).toBeNull();
      // computeMembershipAuc takes losses: a lower loss is more member-like.
      expect(figures.auc).toBeCloseTo(computeMembershipAuc(members.map((s) => -s), nonMembers.map((s) => -s)), 4);
      for (const [measure, interval] of Object.entries(figures.ci95)) {
        if (interval === null) continue;
        expect(interval[0]).toBeLessThanOrEqual(interval[1]);
        const value = figures[measure as keyof typeof figures.ci95] as number;
        expect(value).toBeGreaterThanOrEqual(interval[0] - 0.05);
        expect(value).toBeLessThanOrEqual(interval[1] + 0.05);
      }
    }
  });

  it('reads chance on members and non-members drawn alike, and separates members that score higher', () => {
    const random = new SeededRandom('chance');
    const alike = summarizeAttack(draw(random, 500, 0, 1e6), draw(random, 2000, 0, 1e6), 'alike');
    expect(alike.ci95.auc[0]).toBeLessThan(0.5);
    expect(alike.ci95.auc[1]).toBeGreaterThan(0.5);
    expect(alike.ci95.tprAt1pctFpr![0]).toBeLessThanOrEqual(0.01);
    expect(alike.ci95.tprAt1pctFpr![1]).toBeGreaterThanOrEqual(0.01);
    const apart = summarizeAttack(draw(random, 500, 3, 1e6), draw(random, 2000, 0, 1e6), 'apart');
    expect(apart.tprAt1pctFpr).toBeGreaterThan(0.5);
    expect(apart.ci95.tprAt1pctFpr![0]).toBeGreaterThan(0.4);
    expect(apart.ci95.auc[0]).toBeGreaterThan(0.95);
  });

  it('draws its intervals from a stream seeded by the label: the same scores and label give the same intervals', () => {
    const random = new SeededRandom('seeded');
    const members = draw(random, 50, 1, 1e6);
    const nonMembers = draw(random, 300, 0, 1e6);
    expect(summarizeAttack(members, nonMembers, 'x')).toEqual(summarizeAttack([...members], [...nonMembers], 'x'));
    expect(summarizeAttack(members, nonMembers, 'x').ci95).not.toEqual(summarizeAttack(members, nonMembers, 'y').ci95);
  });

  it('has no TPR at an FPR its non-members cannot resolve, and refuses an empty side', () => {
    const figures = summarizeAttack([3, 4], [1, 2, 3], 'small', 100);
    expect(figures.tprAt1pctFpr).toBeNull();
    expect(figures.ci95.tprAt1pctFpr).toBeNull();
    expect(figures.auc).toBeCloseTo(Math.round((5.5 / 6) * 1e4) / 1e4, 10); // 3 beats 1 and 2, ties 3; 4 beats all
    expect(() => summarizeAttack([], [1], 'empty')).toThrow(RangeError);
  });
});

describe('flaggedAt1pctFpr', () => {
  it('is the share of members above the threshold that flags 1% of the non-members', () => {
    const nonMembers = Array.from({ length: 200 }, (_, i) => i); // 1% of 200: 2 may be flagged, so the threshold is 197
    expect(flaggedAt1pctFpr([198, 197.5, 196, 0], nonMembers)).toBe(0.5);
  });
});

describe('chanceLevels', () => {
  it('is the mean TPR of members drawn like the non-members, at the threshold read from n of them', () => {
    const random = new SeededRandom('chance levels');
    for (const n of [100, 250, 1000]) {
      let total = 0;
      const trials = 400;
      for (let t = 0; t < trials; t++) total += summarizeAttack(draw(random, 50, 0, 1e9), draw(random, n, 0, 1e9), 'c', 100).tprAt1pctFpr!;
      const expected = chanceLevels(n).tprAt1pctFpr!;
      expect(expected).toBeCloseTo((Math.floor(n / 100) + 1) / (n + 1), 4);
      expect(Math.abs(total / trials - expected)).toBeLessThan(0.25 * expected);
    }
    expect(chanceLevels(99)).toEqual({ tprAt1pctFpr: null, tprAt01pctFpr: null, auc: 0.5 });
    expect(chanceLevels(1000).tprAt01pctFpr).toBeCloseTo(2 / 1001, 4);
  });
});
