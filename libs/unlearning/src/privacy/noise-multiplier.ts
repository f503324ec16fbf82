import { UnlearningError } from '../errors';
import { accountEpsilon, PrivacyAccountant } from './accountant';

/** The largest noise multiplier the solver tries: beyond it the target is out of reach. */
export const MAX_NOISE_MULTIPLIER = 1e4;

export interface NoiseSearch {
  epsilon: number;
  delta: number;
  sampleRate: number;
  steps: number;
  accountant: PrivacyAccountant;
}

/**
 * The smallest noise multiplier σ (to a relative 1e-4 by RDP, 1e-3 by PLD) whose ε after `steps` steps at
 * `sampleRate` is at most the target, by the accountant: ε falls as σ grows, so a doubling bracket then
 * bisection on log σ finds it, and the σ returned is the bracket's upper end, whose ε was computed and is
 * within the target. Returns that ε. PLD starts from RDP's σ (PLD's ε is the smaller, so its σ is too) and
 * bisects down from there: each PLD evaluation costs an FFT.
 */
export function solveNoiseMultiplier(search: NoiseSearch): { noiseMultiplier: number; epsilon: number } {
  if (search.accountant === 'pld') {
    const rdp = solveNoiseMultiplier({ ...search, accountant: 'rdp' });
    const epsilonAt = (sigma: number) => accountEpsilon('pld', { sampleRate: search.sampleRate, noiseMultiplier: sigma, steps: search.steps }, search.delta);
    let hi = rdp.noiseMultiplier;
    let hiEpsilon = epsilonAt(hi);
    while (hiEpsilon > search.epsilon) {
      hi *= 1.05; // the PLD's discretisation margin can exceed RDP's slack at tiny ε
      if (hi > MAX_NOISE_MULTIPLIER) throw new UnlearningError('INVALID_CONFIG', `privacy.epsilon: ${search.epsilon} is out of reach by the PLD accountant`);
      hiEpsilon = epsilonAt(hi);
    }
    let lo = hi / 2;
    for (let e = epsilonAt(lo); e <= search.epsilon && lo > 1e-3; e = epsilonAt(lo)) {
      hi = lo;
      hiEpsilon = e;
      lo /= 2;
    }
    return bisect(epsilonAt, search.epsilon, lo, hi, hiEpsilon, 1e-3);
  }
  const epsilonAt = (sigma: number) => accountEpsilon(search.accountant, { sampleRate: search.sampleRate, noiseMultiplier: sigma, steps: search.steps }, search.delta);
  let hi = 1;
  let hiEpsilon = epsilonAt(hi);
  let lo = hi;
  while (hiEpsilon > search.epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > MAX_NOISE_MULTIPLIER) {
      throw new UnlearningError(
        'INVALID_CONFIG',
        `privacy.epsilon: ${search.epsilon} is out of reach in ${search.steps} steps at sample rate ${search.sampleRate} (δ ${search.delta}) with a noise multiplier up to ${MAX_NOISE_MULTIPLIER}`,
      );
    }
    hiEpsilon = epsilonAt(hi);
  }
  if (lo === hi) {
    // σ = 1 is within the target: walk down until it is not.
    while (lo > 1e-3) {
      lo /= 2;
      const e = epsilonAt(lo);
      if (e > search.epsilon) break;
      hi = lo;
      hiEpsilon = e;
    }
  }
  return bisect(epsilonAt, search.epsilon, lo, hi, hiEpsilon, 1e-4);
}

/** Bisection on log σ between lo (ε above the target, or the search's floor) and hi (ε = hiEpsilon, within it). */
function bisect(epsilonAt: (sigma: number) => number, target: number, lo: number, hi: number, hiEpsilon: number, tolerance: number): { noiseMultiplier: number; epsilon: number } {
  while (hi / lo > 1 + tolerance) {
    const mid = Math.sqrt(lo * hi);
    const e = epsilonAt(mid);
    if (e <= target) {
      hi = mid;
      hiEpsilon = e;
    } else lo = mid;
  }
  return { noiseMultiplier: hi, epsilon: hiEpsilon };
}
