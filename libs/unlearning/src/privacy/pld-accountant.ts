// A privacy loss distribution (PLD) accountant for T steps of the Poisson-subsampled Gaussian mechanism,
// add and remove neighbours both (Koskela, Jälkö, Honkela 2020; Gopi, Lee, Wutschitz 2021 for the error
// analysis; Google's dp_accounting for the pessimistic treatment of tails). Every approximation it makes is
// paid for in the (ε, δ) it reports, so what it reports is an upper bound:
//  - one step's privacy loss Y is rounded to the nearest multiple of h; the rounding errors of the T steps are
//    independent, within ±h/2, with a mean m computed exactly (quadrature of the loss against its density,
//    minus the grid's mean), so by Hoeffding the sum of the true losses exceeds the sum of the rounded ones by
//    more than η = T·max(m, 0) + h·sqrt(T·ln(1/δ_err)/2) with probability at most δ_err: δ(ε) ≤ δ̃(ε - η) + δ_err;
//  - the loss's upper tail beyond the grid counts as an infinite loss (all of it in δ); its lower tail is
//    moved up to the grid's first point (a larger loss: pessimistic);
//  - the T-fold composition is one FFT, a pointwise power and an inverse FFT on a circular grid: mass that
//    wraps around only adds to δ̃, and the mass beyond the grid's top is bounded by Chernoff with the exact
//    moment generating function of the rounded loss, and added;
//  - 1e-12 is added for floating-point error in the FFT.
// Mechanism: with the sample, the output is (1-q)N(0, σ²) + qN(1, σ²) (P); without it N(0, σ²) (Q). "remove"
// is the loss log(P/Q) under P, "add" the loss log(Q/P) under Q; the mechanism is (ε, δ)-DP when both are.
import { fft } from './fft';
import { logAdd, logNormalCdf, logSub, normalCdf } from './special';
import { checkDelta, checkMechanism } from './rdp-accountant';
import type { SubsampledGaussian } from './accountant';

/** How far out one step's x is followed (in σ): beyond it the mass is < 1e-15 and counted as infinite loss. */
const TAIL_SIGMAS = 8;
const FFT_SLACK = 1e-12;
const MAX_FFT_LENGTH = 1 << 22;

export interface PldOptions {
  /** The ε error the discretisation may cost (η's Hoeffding part is kept below half of it). Default 0.01. */
  epsilonTolerance?: number;
}

/** The smallest ε (an upper bound on the true one) for which the mechanism is (ε, δ)-DP. */
export function pldEpsilon(mechanism: SubsampledGaussian, delta: number, options: PldOptions = {}): number {
  checkMechanism(mechanism.sampleRate, mechanism.noiseMultiplier);
  checkDelta(delta);
  if (mechanism.steps === 0) return 0;
  const deltaError = 1e-3 * delta;
  return Math.max(...(['remove', 'add'] as const).map((direction) => composed(mechanism, direction, deltaError, delta, options).epsilonFor(delta - deltaError)));
}

/** An upper bound on δ(ε) of the mechanism (the larger of the two directions'). */
export function pldDelta(mechanism: SubsampledGaussian, epsilon: number, options: PldOptions & { deltaError?: number } = {}): number {
  checkMechanism(mechanism.sampleRate, mechanism.noiseMultiplier);
  if (mechanism.steps === 0) return 0;
  const deltaError = options.deltaError ?? 1e-12;
  return Math.max(...(['remove', 'add'] as const).map((direction) => composed(mechanism, direction, deltaError, 1e-5, options).deltaAt(epsilon) + deltaError));
}

type Direction = 'remove' | 'add';

/** One step's loss as a function of the output x, its inverse, and the density and tails of x. */
class OneStep {
  readonly logOneMinusQ: number;
  private readonly s2: number;

  constructor(readonly q: number, readonly sigma: number, readonly direction: Direction) {
    this.logOneMinusQ = q < 1 ? Math.log1p(-q) : -Infinity;
    this.s2 = sigma * sigma;
  }

  /** L(x) = log P(x)/Q(x) = log(1 - q + q e^((2x-1)/(2σ²))). */
  logRatio(x: number): number {
    const exponent = (2 * x - 1) / (2 * this.s2);
    return this.q < 1 ? logAdd(this.logOneMinusQ, Math.log(this.q) + exponent) : exponent;
  }

  /** The x at which L(x) = l; -Infinity where l is at or below L's infimum log(1 - q). */
  xAtLogRatio(l: number): number {
    if (this.q === 1) return this.s2 * l + 0.5;
    if (l <= this.logOneMinusQ) return -Infinity;
    return this.s2 * (logSub(l, this.logOneMinusQ) - Math.log(this.q)) + 0.5;
  }

  /** This direction's loss Y at x: L(x) (remove, x ~ P) or -L(x) (add, x ~ Q). */
  loss(x: number): number {
    return this.direction === 'remove' ? this.logRatio(x) : -this.logRatio(x);
  }

  /** The x-interval on which Y lies in [y1, y2). */
  xInterval(y1: number, y2: number): [number, number] {
    return this.direction === 'remove' ? [this.xAtLogRatio(y1), this.xAtLogRatio(y2)] : [this.xAtLogRatio(-y2), this.xAtLogRatio(-y1)];
  }

  density(x: number): number {
    const g = (m: number) => Math.exp(-((x - m) ** 2) / (2 * this.s2)) / (this.sigma * Math.sqrt(2 * Math.PI));
    return this.direction === 'remove' ? (1 - this.q) * g(0) + this.q * g(1) : g(0);
  }

  /** P(x <= value) and P(x > value) under this direction's distribution, each with full precision in its own tail. */
  cdf(x: number): number {
    return this.direction === 'remove' ? (1 - this.q) * normalCdf(x / this.sigma) + this.q * normalCdf((x - 1) / this.sigma) : normalCdf(x / this.sigma);
  }

  sf(x: number): number {
    return this.direction === 'remove' ? (1 - this.q) * normalCdf(-x / this.sigma) + this.q * normalCdf((1 - x) / this.sigma) : normalCdf(-x / this.sigma);
  }

  /** The mass of x in [x1, x2], from the CDF below the middle and the survival function above it (no cancellation). */
  mass(x1: number, x2: number): number {
    if (!(x2 > x1)) return 0;
    return x1 >= 0.5 ? Math.max(0, this.sf(x1) - this.sf(x2)) : Math.max(0, this.cdf(x2) - this.cdf(x1));
  }

  /** Where x is followed: [-8σ, 1 + 8σ] (remove: P), [-8σ, 8σ] (add: Q). */
  xRange(): [number, number] {
    return [-TAIL_SIGMAS * this.sigma, (this.direction === 'remove' ? 1 : 0) + TAIL_SIGMAS * this.sigma];
  }

  /** ∫ Y dμ over x in [x1, x2] (composite Simpson, 20,000 panels; infinite ends cut 4σ beyond the followed range). */
  integrateLoss(x1: number, x2: number): number {
    const [lo, hi] = this.xRange();
    const a = Math.max(x1, lo - 4 * this.sigma);
    const b = Math.min(x2, hi + 4 * this.sigma);
    if (!(b > a)) return 0;
    const n = 20000;
    const step = (b - a) / n;
    let sum = 0;
    for (let i = 0; i <= n; i++) {
      const x = a + i * step;
      const w = i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2;
      sum += w * this.loss(x) * this.density(x);
    }
    return (sum * step) / 3;
  }
}

/** One step's rounded loss: masses on grid points kA..kB (loss k·h), the infinite mass, and the rounding bias. */
interface SteppedLoss {
  h: number;
  kA: number;
  masses: Float64Array;
  infinite: number;
  /** An upper bound on E[(Y - Ỹ) on the grid]: the mean rounding error of the steps. */
  bias: number;
}

function discretize(step: OneStep, h: number): SteppedLoss {
  const [xLo, xHi] = step.xRange();
  const yEnds = [step.loss(xLo), step.loss(xHi)];
  const yLo = Math.max(Math.min(...yEnds), step.direction === 'remove' ? step.logOneMinusQ : -Infinity);
  const yHi = Math.max(...yEnds);
  const kA = Math.round(yLo / h);
  const kB = Math.round(yHi / h);
  const masses = new Float64Array(kB - kA + 1);
  // Each cell edge's x, CDF and survival function once (neighbouring cells share their edge); x rises with the
  // edge for 'remove' and falls for 'add', so a cell is [x(edge k), x(edge k+1)] or the reverse.
  const edges = kB - kA + 2;
  const xs = new Float64Array(edges);
  for (let e = 0; e < edges; e++) {
    const y = (kA + e - 0.5) * h;
    xs[e] = step.direction === 'remove' ? step.xAtLogRatio(y) : step.xAtLogRatio(-y);
  }
  const low = xs.map((x) => (x < 0.5 ? step.cdf(x) : NaN));
  const high = xs.map((x) => (x >= 0.5 ? step.sf(x) : NaN));
  let gridMean = 0;
  for (let k = kA; k <= kB; k++) {
    const e = k - kA;
    const [a, b] = step.direction === 'remove' ? [e, e + 1] : [e + 1, e];
    let mass = 0;
    if (xs[b] > xs[a]) {
      if (xs[a] >= 0.5) mass = high[a] - high[b];
      else mass = (Number.isNaN(low[b]) ? 1 - high[b] : low[b]) - low[a];
    }
    masses[e] = Math.max(0, mass);
    gridMean += k * h * masses[e];
  }
  const [interiorLo, interiorHi] = step.xInterval((kA - 0.5) * h, (kB + 0.5) * h);
  // Rounding bias over the grid's cells, plus a margin for the quadrature's own error.
  const bias = step.integrateLoss(interiorLo, interiorHi) - gridMean + 1e-9;
  // Below the grid: moved up to its first point. Above it: infinite loss.
  const [belowLo, belowHi] = step.xInterval(-Infinity, (kA - 0.5) * h);
  masses[0] += step.mass(belowLo, belowHi);
  const [aboveLo, aboveHi] = step.xInterval((kB + 0.5) * h, Infinity);
  const infinite = step.mass(aboveLo, aboveHi);
  return { h, kA, masses, infinite, bias };
}

/** log E[e^(λ (Ỹ - centre))] over the finite part of one rounded step (a sub-probability), λ in loss units. */
function logMgf(loss: SteppedLoss, centre: number, lambda: number): number {
  // Shifted by the largest exponent so that no term overflows.
  const top = lambda * (lambda > 0 ? loss.kA + loss.masses.length - 1 - centre : loss.kA - centre) * loss.h;
  let sum = 0;
  for (let i = 0; i < loss.masses.length; i++) sum += loss.masses[i] * Math.exp(lambda * (loss.kA + i - centre) * loss.h - top);
  return top + Math.log(sum);
}

const LAMBDAS = [0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];

/** The T-fold composition of one direction's rounded loss, with what δ̃(ε') and its inverse need. */
function composed(mechanism: SubsampledGaussian, direction: Direction, deltaError: number, delta: number, options: PldOptions) {
  const T = mechanism.steps;
  const tolerance = options.epsilonTolerance ?? 0.01;
  const hoeffding = Math.sqrt((T * Math.log(1 / deltaError)) / 2);
  let h = tolerance / (2 * hoeffding);
  const step = new OneStep(mechanism.sampleRate, mechanism.noiseMultiplier, direction);
  for (;;) {
    const loss = discretize(step, h);
    const total = loss.masses.reduce((a, b) => a + b, 0);
    const centre = Math.round(loss.masses.reduce((s, m, i) => s + m * (loss.kA + i), 0) / total);
    // Half-width of the circular grid: the per-step support, and where Chernoff puts the composed tails below 1e-4 δ.
    const tailTarget = Math.log(1e-4 * delta);
    const tailWidth = (sign: 1 | -1) => Math.min(...LAMBDAS.map((l) => (T * logMgf(loss, centre, sign * l) - tailTarget) / l));
    const halfWidth = Math.max(loss.kA + loss.masses.length - centre, centre - loss.kA, tailWidth(1) / h, tailWidth(-1) / h) + 2;
    let length = 1 << Math.max(10, Math.ceil(Math.log2(2 * halfWidth)));
    if (length > MAX_FFT_LENGTH) {
      h *= 2;
      continue;
    }
    const re = new Float64Array(length);
    const im = new Float64Array(length);
    loss.masses.forEach((mass, i) => {
      const offset = loss.kA + i - centre;
      re[(offset + length) % length] += mass;
    });
    fft(re, im);
    for (let i = 0; i < length; i++) {
      const r = Math.hypot(re[i], im[i]);
      const theta = Math.atan2(im[i], re[i]);
      const rt = r === 0 ? 0 : Math.exp(T * Math.log(r));
      re[i] = rt * Math.cos(T * theta);
      im[i] = rt * Math.sin(T * theta);
    }
    fft(re, im, true);
    // Offsets -length/2 .. length/2 - 1, ascending loss (offset + T·centre)·h.
    const half = length / 2;
    const values = new Float64Array(length);
    const masses = new Float64Array(length);
    for (let o = -half; o < half; o++) {
      const j = o - -half;
      values[j] = (o + T * centre) * h;
      masses[j] = Math.max(0, re[(o + length) % length] / length);
    }
    const beyondTop = Math.exp(Math.min(...LAMBDAS.map((l) => T * logMgf(loss, centre, l) - l * half * h)));
    const infinite = -Math.expm1(T * Math.log1p(-Math.min(loss.infinite, 1)));
    const eta = T * Math.max(loss.bias, 0) + h * hoeffding;
    return new ComposedLoss(values, masses, infinite + Math.min(1, beyondTop) + FFT_SLACK, eta);
  }
}

class ComposedLoss {
  /** Suffix sums from index i: Σ mass and Σ mass·e^(-value), the latter over values > -1 only (ε' ≥ -1 is all we ask). */
  private readonly tailMass: Float64Array;
  private readonly tailWeighted: Float64Array;

  constructor(private readonly values: Float64Array, masses: Float64Array, private readonly extra: number, readonly eta: number) {
    const n = values.length;
    this.tailMass = new Float64Array(n + 1);
    this.tailWeighted = new Float64Array(n + 1);
    for (let i = n - 1; i >= 0; i--) {
      this.tailMass[i] = this.tailMass[i + 1] + masses[i];
      this.tailWeighted[i] = this.tailWeighted[i + 1] + (values[i] > -1 ? masses[i] * Math.exp(-values[i]) : 0);
    }
  }

  /** δ̃(ε') = extra + Σ_{loss > ε'} mass (1 - e^(ε' - loss)), for ε' ≥ -1. */
  private roundedDelta(epsilon: number): number {
    let lo = 0;
    let hi = this.values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.values[mid] > epsilon) hi = mid;
      else lo = mid + 1;
    }
    return this.extra + Math.max(0, this.tailMass[lo] - Math.exp(epsilon) * this.tailWeighted[lo]);
  }

  /** δ(ε) ≤ δ̃(ε - η) (the caller adds δ_err). */
  deltaAt(epsilon: number): number {
    return Math.min(1, this.roundedDelta(Math.max(-1, epsilon - this.eta)));
  }

  /** The smallest ε with δ̃(ε - η) ≤ target (bisection: δ̃ falls as ε grows); Infinity when no ε reaches it. */
  epsilonFor(target: number): number {
    if (this.extra >= target) return Infinity;
    let lo = -1;
    let hi = Math.max(1, this.values[this.values.length - 1]);
    if (this.roundedDelta(hi) > target) return Infinity;
    if (this.roundedDelta(lo) <= target) return Math.max(0, lo + this.eta);
    for (let i = 0; i < 100 && hi - lo > 1e-9; i++) {
      const mid = (lo + hi) / 2;
      if (this.roundedDelta(mid) <= target) hi = mid;
      else lo = mid;
    }
    return Math.max(0, hi + this.eta);
  }
}

/** The exact δ(ε) of ONE step (T = 1), both directions, in closed form: a reference for tests. */
export function exactOneStepDelta(q: number, sigma: number, epsilon: number): number {
  const remove = new OneStep(q, sigma, 'remove');
  // remove: P(L > ε) - e^ε Q(L > ε), L increasing in x: x > x*.
  const xr = remove.xAtLogRatio(epsilon);
  const tailP = (x: number) => (1 - q) * normalCdf(-x / sigma) + q * normalCdf((1 - x) / sigma);
  const dRemove = tailP(xr) - Math.exp(epsilon) * normalCdf(-xr / sigma);
  // add: Q(L < -ε) - e^ε P(L < -ε): x < x(-ε), empty when -ε is at or below L's infimum.
  const xa = remove.xAtLogRatio(-epsilon);
  const headP = (x: number) => (1 - q) * normalCdf(x / sigma) + q * normalCdf((x - 1) / sigma);
  const dAdd = xa === -Infinity ? 0 : Math.exp(logNormalCdf(xa / sigma)) - Math.exp(epsilon) * headP(xa);
  return Math.max(dRemove, dAdd, 0);
}
