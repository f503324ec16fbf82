import { SeededRandom } from '../random';
import { fitGaussians, likelihoodRatios, PER_EXAMPLE_VARIANCE_FROM, scaledLogit } from './lira';
import { planInclusion } from './shadow-plan';

describe('scaledLogit', () => {
  it('is log p(y) - log of the other classes, and stays finite at float32 confidences of 1 and 0', () => {
    const p = Float32Array.from([0.7, 0.2, 0.1, /* row 1 */ 1, 0, 0, /* row 2 */ 0, 0.5, 0.5]);
    expect(scaledLogit(p, 0, 3, 0)).toBeCloseTo(Math.log(0.7 / 0.3), 6);
    expect(scaledLogit(p, 0, 3, 2)).toBeCloseTo(Math.log(0.1 / 0.9), 6);
    expect(scaledLogit(p, 1, 3, 0)).toBeCloseTo(-Math.log(1e-45), 6);
    expect(scaledLogit(p, 2, 3, 0)).toBeCloseTo(Math.log(1e-45), 6);
    // The other classes are summed, not taken as 1 - p(y): a confidence that rounds to 1 in float32 still scores.
    const sure = Float32Array.from([1, 1e-9, 2e-9]);
    expect(scaledLogit(sure, 0, 3, 0)).toBeCloseTo(-Math.log(3e-9), 3);
  });
});

/** Shadow scores: example j scores N(mu_j, 1) OUT and N(mu_j + shift_j, 1) IN. */
function simulate(shadows: number, examples: number, shift: (j: number) => number) {
  const random = new SeededRandom(`lira ${shadows}`);
  const ids = Array.from({ length: examples }, (_, j) => ({ externalId: `e${j}` }));
  const inclusion = planInclusion(ids, shadows, 'sim');
  const mu = Array.from({ length: examples }, () => random.nextGaussian() * 5);
  const scores = new Float64Array(shadows * examples);
  for (let k = 0; k < shadows; k++)
    for (let j = 0; j < examples; j++) scores[k * examples + j] = mu[j] + (inclusion[k * examples + j] ? shift(j) : 0) + random.nextGaussian();
  return { random, inclusion, mu, scores };
}

describe('fitGaussians and likelihoodRatios', () => {
  it('pools one variance per side below 64 shadow models, fits per example from 64 on', () => {
    const few = simulate(16, 300, () => 2);
    const fits = fitGaussians(few.scores, few.inclusion, 16, 300);
    expect(fits.variance).toBe('fixed');
    expect(new Set(fits.stdIn).size).toBe(1);
    // Pooled around each example's own mean, the spread is the noise's (1), not that of the means (5).
    expect(fits.stdIn[0]).toBeGreaterThan(0.85);
    expect(fits.stdIn[0]).toBeLessThan(1.15);
    fits.meanOut.forEach((m, j) => expect(Math.abs(m - few.mu[j])).toBeLessThan(1.6));
    const many = simulate(PER_EXAMPLE_VARIANCE_FROM, 50, () => 2);
    const perExample = fitGaussians(many.scores, many.inclusion, PER_EXAMPLE_VARIANCE_FROM, 50);
    expect(perExample.variance).toBe('per-example');
    expect(new Set(perExample.stdOut).size).toBe(50);
  });

  it('scores a model that trained on an example above one that did not, per example, whatever its mean', () => {
    const { random, inclusion, mu, scores } = simulate(16, 400, () => 3);
    const fits = fitGaussians(scores, inclusion, 16, 400);
    const member = Float64Array.from(mu, (m) => m + 3 + random.nextGaussian());
    const nonMember = Float64Array.from(mu, (m) => m + random.nextGaussian());
    const lrIn = likelihoodRatios(member, fits);
    const lrOut = likelihoodRatios(nonMember, fits);
    const wins = Array.from(lrIn).filter((v, j) => v > lrOut[j]).length;
    expect(wins / 400).toBeGreaterThan(0.9);
    // The raw scores, spread by the examples' means, cannot do that.
    expect(Array.from(member).filter((v, j) => v > nonMember[(j + 1) % 400]).length / 400).toBeLessThan(0.8);
  });

  it('keeps a floor under a variance of 0 (models pinned at the same score) and needs IN and OUT scores', () => {
    const inclusion = planInclusion([{ externalId: 'a' }], 4, 's');
    const fits = fitGaussians(new Float64Array(4).fill(103), inclusion, 4, 1);
    expect(fits.stdIn[0]).toBeGreaterThan(0);
    expect(Number.isFinite(likelihoodRatios(Float64Array.of(100), fits)[0])).toBe(true);
    expect(() => fitGaussians(new Float64Array(4), new Uint8Array(4), 4, 1)).toThrow('example 0 has no IN shadow score');
  });
});

describe('planInclusion', () => {
  it('puts every candidate IN exactly half of the shadow models, by seed and id only', () => {
    const candidates = Array.from({ length: 200 }, (_, j) => ({ externalId: `c${j}` }));
    for (const shadows of [4, 5, 16]) {
      const inclusion = planInclusion(candidates, shadows, 'seed');
      candidates.forEach((_, j) => {
        let inCount = 0;
        for (let k = 0; k < shadows; k++) inCount += inclusion[k * 200 + j];
        expect(inCount).toBe(Math.floor(shadows / 2));
      });
    }
    const a = planInclusion(candidates, 16, 'seed');
    const b = planInclusion([{ externalId: 'other' }, ...candidates.slice(0, 1)], 16, 'seed');
    for (let k = 0; k < 16; k++) expect(b[k * 2 + 1]).toBe(a[k * 200]); // another candidate moves nobody
    expect(planInclusion(candidates, 16, 'other seed')).not.toEqual(a);
  });
});
