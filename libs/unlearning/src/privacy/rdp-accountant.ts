// Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Rényi Differential
// Privacy of the Sampled Gaussian Mechanism", §3.3), composed over steps, and its conversion to (ε, δ)-DP by
// Balle et al. 2020 ("Hypothesis testing interpretations and Rényi differential privacy", Theorem 21). The
// same computation as Opacus's opacus/accountants/analysis/rdp.py and Google's dp_accounting RDP accountant,
// written in log space throughout.
import { logAdd, logErfc, logSub } from './special';

/**
 * Opacus's default orders: 1.1, 1.2, ..., 10.9 and 12, 13, ..., 63, plus larger ones for small ε: a target
 * ε below 0.5 puts the best order above 63 only for tiny δ, and an order that never wins costs nothing.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
  80, 96, 128, 192, 256, 512, 1024,
];

/** log A_α for an integer order α ≥ 2: a finite binomial sum (Mironov et al. 2019, §3.3). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0; // log C(α, i)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/**
 * log A_α for a fractional order: the two halves of the integral split at z0 = σ² log(1/q - 1) + 1/2, each a
 * series of binomial terms times Gaussian tails, summed in log space with the terms' signs until both fall
 * below e^-30 (Mironov et al. 2019, §3.3; Opacus's _compute_log_a_for_frac_alpha).
 */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logAbsBinom = 0; // log |C(α, i)|
  let sign = 1;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      if (factor < 0) sign = -sign;
      logAbsBinom += Math.log(Math.abs(factor));
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * logQ + j * log1mQ;
    const logT1 = logAbsBinom + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/**
 * The RDP ε(α) of one step of the Poisson-subsampled Gaussian mechanism with sampling rate q and noise
 * multiplier σ (noise std / L2 sensitivity), at order α > 1.
 */
export function computeRdpStep(q: number, sigma: number, alpha: number): number {
  checkMechanism(q, sigma);
  if (!(alpha > 1) || !Number.isFinite(alpha)) throw new RangeError(`RDP order must be a finite number > 1, got ${alpha}`);
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP at each order after `steps` steps (RDP composes by addition). */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): number[] {
  if (!Number.isSafeInteger(steps) || steps < 0) throw new RangeError(`steps must be a non-negative integer, got ${steps}`);
  return orders.map((alpha) => steps * computeRdpStep(q, sigma, alpha));
}

/**
 * The smallest ε over the orders such that RDP (α, rdp(α)) implies (ε, δ)-DP, by Balle et al. 2020, Thm 21:
 * ε = rdp + log((α-1)/α) - (log δ + log α)/(α - 1). Returns the order that gave it.
 */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (orders.length !== rdp.length || orders.length === 0) throw new RangeError(`orders (${orders.length}) and rdp (${rdp.length}) must be non-empty and as long`);
  checkDelta(delta);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((alpha, i) => {
    const epsilon = rdp[i] + Math.log((alpha - 1) / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);
    if (epsilon < best.epsilon) best = { epsilon, order: alpha };
  });
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/** ε of `steps` steps of the subsampled Gaussian (q, σ) at δ by RDP, over DEFAULT_RDP_ORDERS unless given. */
export function rdpEpsilon(mechanism: { sampleRate: number; noiseMultiplier: number; steps: number }, delta: number, orders = DEFAULT_RDP_ORDERS): { epsilon: number; order: number } {
  return rdpToEpsilon(orders, computeRdp(mechanism.sampleRate, mechanism.noiseMultiplier, mechanism.steps, orders), delta);
}

export function checkMechanism(q: number, sigma: number): void {
  if (!(q > 0 && q <= 1)) throw new RangeError(`sample rate must be in (0, 1], got ${q}`);
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`noise multiplier must be a finite number > 0, got ${sigma}`);
}

export function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
}
