/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { solveNoiseMultiplier } from './noise-multiplier';
import { exactOneStepDelta, pldDelta, pldEpsilon } from './pld-accountant';
import { rdpEpsilon } from './rdp-accountant';
import { normalCdf } from './special';

/** The smallest ε with δ(ε) ≤ δ for a δ(ε) that falls with ε. */
function invert(deltaOf: (epsilon: number) => number, delta: number): number {
  let lo = 0;
  let hi = 50;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (deltaOf(mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

describe('PLD accountant of the Poisson-subsampled Gaussian', () => {
  it('is sound and tight where the truth has a closed form: T Gaussian mechanisms (q = 1) compose to one with μ = √T/σ', () => {
    // Balle & Wang 2018: δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2).
    for (const [sigma, steps] of [
      [20, 1000],
      [5, 10],
      [50, 2000],
    ]) {
      const mu = Math.sqrt(steps) / sigma;
      const truth = invert((e) => normalCdf(-e / mu + mu / 2) - Math.exp(e) * normalCdf(-e / mu - mu / 2), 1e-5);
      const pld = pldEpsilon({ sampleRate: 1, noiseMultiplier: sigma, steps }, 1e-5);
      expect(pld).toBeGreaterThanOrEqual(truth);
      expect(pld - truth).toBeLessThan(0.015);
    }
  });

  it('is sound and tight for one subsampled step, whose δ(ε) is a closed form of Gaussian tails in both directions', () => {
    for (const [q, sigma] of [
      [0.05, 0.8],
      [0.3, 1.5],
      [0.001, 0.5],
    ]) {
      const truth = invert((e) => exactOneStepDelta(q, sigma, e), 1e-5);
      const pld = pldEpsilon({ sampleRate: q, noiseMultiplier: sigma, steps: 1 }, 1e-5);
      expect(pld).toBeGreaterThanOrEqual(truth);
      expect(pld - truth).toBeLessThan(0.015);
    }
  });

  it('is tighter than RDP, by 8% on the MNIST example (σ 1.1, q 256/60000, 14063 steps, δ 1e-5: 2.39 against 2.60)', () => {
    const mnist = { sampleRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14063 };
    const pld = pldEpsilon(mnist, 1e-5);
    const rdp = rdpEpsilon(mnist, 1e-5).epsilon;
    expect(pld).toBeCloseTo(2.39, 1);
    expect(1 - pld / rdp).toBeGreaterThan(0.05);
    expect(1 - pld / rdp).toBeLessThan(0.15);
    for (const m of [
      { sampleRate: 1 / 36, noiseMultiplier: 1.8, steps: 540 },
      { sampleRate: 0.01, noiseMultiplier: 4, steps: 1000 },
      { sampleRate: 0.2, noiseMultiplier: 0.9, steps: 50 },
    ]) {
      expect(pldEpsilon(m, 1e-5)).toBeLessThan(rdpEpsilon(m, 1e-5).epsilon);
    }
  });

  it('a finer grid gives about the same ε, never more than the coarse one plus its tolerance', () => {
    const m = { sampleRate: 0.02, noiseMultiplier: 1.2, steps: 300 };
    const coarse = pldEpsilon(m, 1e-5, { epsilonTolerance: 0.05 });
    const fine = pldEpsilon(m, 1e-5, { epsilonTolerance: 0.005 });
    expect(fine).toBeLessThanOrEqual(coarse);
    expect(coarse - fine).toBeLessThan(0.05);
  });

  it('δ(ε) and ε(δ) are consistent: δ at the ε it reports is within δ', () => {
    const m = { sampleRate: 0.05, noiseMultiplier: 1, steps: 50 };
    const epsilon = pldEpsilon(m, 1e-6);
    expect(pldDelta(m, epsilon, { deltaError: 1e-9 })).toBeLessThanOrEqual(1e-6);
    expect(pldDelta(m, epsilon * 0.8, { deltaError: 1e-9 })).toBeGreaterThan(1e-6);
  });

  it('solves σ for a target ε below what RDP needs, and its ε is within the target', () => {
    const search = { epsilon: 2, delta: 1e-5, sampleRate: 0.05, steps: 100 };
    const pld = solveNoiseMultiplier({ ...search, accountant: 'pld' });
    const rdp = solveNoiseMultiplier({ ...search, accountant: 'rdp' });
    expect(pld.epsilon).toBeLessThanOrEqual(2);
    expect(pldEpsilon({ ...search, noiseMultiplier: pld.noiseMultiplier }, 1e-5)).toBe(pld.epsilon);
    expect(pld.noiseMultiplier).toBeLessThan(rdp.noiseMultiplier);
    expect(pldEpsilon({ ...search, noiseMultiplier: pld.noiseMultiplier * 0.99 }, 1e-5)).toBeGreaterThan(2);
  });
});
