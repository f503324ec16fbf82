import { computeRdp, computeRdpStep, DEFAULT_RDP_ORDERS, rdpEpsilon, rdpToEpsilon } from './rdp-accountant';

/** Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1..10.9 by 0.1, then 12..63. */
const OPACUS_ORDERS = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)];

/** The conversion before Balle et al. 2020 (Mironov 2017, Prop. 3): ε = rdp - log δ / (α - 1). */
function classicEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): number {
  return Math.min(...orders.map((alpha, i) => rdp[i] - Math.log(delta) / (alpha - 1)));
}

describe('RDP accountant of the Poisson-subsampled Gaussian', () => {
  it("gives Opacus's pinned value: σ=1.5, q=0.04, 2250 steps, δ=1e-5 -> ε = 7.32911117143 (opacus/tests/accountants_test.py)", () => {
    const { epsilon } = rdpToEpsilon(OPACUS_ORDERS, computeRdp(0.04, 1.5, 2250, OPACUS_ORDERS), 1e-5);
    expect(epsilon).toBeCloseTo(7.32911117143, 9);
  });

  it("gives the example of Opacus's rdp.py docstring: (1e-5, σ=1, 10 steps) + (1e-4, σ=3, 4 steps), orders 2..32 -> ε 0.336 at order 23", () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const a = computeRdp(1e-5, 1.0, 10, orders);
    const b = computeRdp(1e-4, 3.0, 4, orders);
    const { epsilon, order } = rdpToEpsilon(orders, a.map((v, i) => v + b[i]), 1e-5);
    expect(epsilon).toBeCloseTo(0.336, 3);
    expect(order).toBe(23);
  });

  it("gives the MNIST example's ε ≈ 3 (σ=1.1, q=256/60000, 60 epochs, δ=1e-5) with the conversion of its day, and 2.60 with Balle et al.'s", () => {
    const q = 256 / 60000;
    const steps = Math.ceil(60 / q); // 14063, as TensorFlow Privacy's compute_dp_sgd_privacy counts them
    const rdp = computeRdp(q, 1.1, steps, OPACUS_ORDERS);
    expect(classicEpsilon(OPACUS_ORDERS, rdp, 1e-5)).toBeCloseTo(3.01, 2);
    expect(rdpToEpsilon(OPACUS_ORDERS, rdp, 1e-5).epsilon).toBeCloseTo(2.597, 3);
  });

  it('fractional orders agree with the integer orders they approach (two different sums)', () => {
    for (const [q, sigma] of [
      [0.01, 0.8],
      [0.004, 1.1],
      [0.1, 2],
      [0.5, 1.5],
    ]) {
      for (const alpha of [2, 3, 8, 20]) {
        const integer = computeRdpStep(q, sigma, alpha);
        const near = computeRdpStep(q, sigma, alpha + 1e-7);
        expect(Math.abs(near - integer)).toBeLessThan(1e-6 * Math.max(integer, 1e-12) + 1e-12);
        // Between two integer orders RDP is monotone in α (Rényi divergences grow with the order).
        const between = computeRdpStep(q, sigma, alpha + 0.5);
        expect(between).toBeGreaterThanOrEqual(integer);
        expect(between).toBeLessThanOrEqual(computeRdpStep(q, sigma, alpha + 1));
      }
    }
  });

  it('without subsampling is the Gaussian mechanism: α / (2σ²)', () => {
    expect(computeRdpStep(1, 2, 5)).toBeCloseTo(5 / 8, 15);
    // and sampling at q → 1 approaches it through the binomial sum
    expect(computeRdpStep(1 - 1e-12, 2, 5)).toBeCloseTo(5 / 8, 9);
  });

  it('ε grows with the steps and the sample rate and falls with the noise; Balle et al. never exceeds the classic conversion', () => {
    const base = { sampleRate: 0.01, noiseMultiplier: 1, steps: 1000 };
    const e = rdpEpsilon(base, 1e-5).epsilon;
    expect(rdpEpsilon({ ...base, steps: 2000 }, 1e-5).epsilon).toBeGreaterThan(e);
    expect(rdpEpsilon({ ...base, sampleRate: 0.02 }, 1e-5).epsilon).toBeGreaterThan(e);
    expect(rdpEpsilon({ ...base, noiseMultiplier: 1.2 }, 1e-5).epsilon).toBeLessThan(e);
    const rdp = computeRdp(0.01, 1, 1000, DEFAULT_RDP_ORDERS);
    expect(rdpToEpsilon(DEFAULT_RDP_ORDERS, rdp, 1e-5).epsilon).toBeLessThan(classicEpsilon(DEFAULT_RDP_ORDERS, rdp, 1e-5));
  });

  it('refuses what is not a mechanism', () => {
    expect(() => computeRdpStep(0, 1, 2)).toThrow(/sample rate/);
    expect(() => computeRdpStep(0.1, 0, 2)).toThrow(/noise multiplier/);
    expect(() => computeRdpStep(0.1, 1, 1)).toThrow(/order/);
    expect(() => rdpToEpsilon([2], [1], 0)).toThrow(/delta/);
  });
});
