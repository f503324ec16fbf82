import fc from 'fast-check';
import { accountEpsilon } from './accountant';
import { solveNoiseMultiplier } from './noise-multiplier';

describe('solveNoiseMultiplier', () => {
  it("finds Opacus's get_noise_multiplier value: ε=8, δ=1e-5, q=0.04, 2000 steps -> σ = 1.3562 (opacus/tests/accountants_test.py)", () => {
    const { noiseMultiplier } = solveNoiseMultiplier({ epsilon: 8, delta: 1e-5, sampleRate: 0.04, steps: 2000, accountant: 'rdp' });
    expect(noiseMultiplier).toBeCloseTo(1.3562, 4);
  });

  it('returns a σ whose ε is within the target, and a σ 0.1% smaller overshoots it (monotone search, tight)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.3, max: 10, noNaN: true }),
        fc.constantFrom(1e-3, 1e-2, 0.04, 0.25),
        fc.integer({ min: 10, max: 3000 }),
        fc.constantFrom(1e-4, 1e-5, 1e-6),
        (epsilon, sampleRate, steps, delta) => {
          const solved = solveNoiseMultiplier({ epsilon, delta, sampleRate, steps, accountant: 'rdp' });
          const mechanism = { sampleRate, noiseMultiplier: solved.noiseMultiplier, steps };
          expect(accountEpsilon('rdp', mechanism, delta)).toBe(solved.epsilon);
          expect(solved.epsilon).toBeLessThanOrEqual(epsilon);
          expect(accountEpsilon('rdp', { ...mechanism, noiseMultiplier: solved.noiseMultiplier * 0.999 }, delta)).toBeGreaterThan(epsilon);
        },
      ),
      { numRuns: 8, seed: 13 },
    );
  });

  it('names privacy.epsilon when the target is out of reach', () => {
    expect(() => solveNoiseMultiplier({ epsilon: 1e-9, delta: 1e-5, sampleRate: 1, steps: 100000, accountant: 'rdp' })).toThrow(/privacy\.epsilon/);
  });
});
