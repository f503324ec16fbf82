import { SeededRandom } from '../random';

/** 2^53: sample rates are k / 2^53 for an integer k, the probabilities a 53-bit uniform draw gives exactly. */
export const RATE_DENOMINATOR = 9007199254740992;

/** The rate k / 2^53 just above `rate` (so never below it): the one Poisson sampling then uses exactly. */
export function representableRate(rate: number): number {
  if (!(rate > 0 && rate <= 1)) throw new RangeError(`sample rate must be in (0, 1], got ${rate}`);
  return Math.ceil(rate * RATE_DENOMINATOR) / RATE_DENOMINATOR;
}

export function isRepresentableRate(rate: number): boolean {
  return rate > 0 && rate <= 1 && Number.isInteger(rate * RATE_DENOMINATOR);
}

/**
 * Poisson sampling: each of `members` (sample indexes, in plan order) joins each of `steps` steps
 * independently with probability `sampleRate` (k / 2^53, drawn exactly by nextBernoulli53). Member i's
 * draws come from its own stream, SeededRandom(`${label}|` + hex of its placement key), so which steps a
 * sample joins depends on the label and on that sample alone: removing a sample changes no other sample's
 * steps, and a batch lists its members in plan order. Returns each step's sample indexes.
 */
export function samplePoissonBatches(
  members: readonly number[],
  keys: readonly Buffer[],
  steps: number,
  sampleRate: number,
  label: string,
): Int32Array[] {
  if (!isRepresentableRate(sampleRate)) throw new RangeError(`sample rate must be k / 2^53 in (0, 1], got ${sampleRate}`);
  const k = sampleRate * RATE_DENOMINATOR;
  const batches: number[][] = Array.from({ length: steps }, () => []);
  for (const member of members) {
    const random = new SeededRandom(`${label}|${keys[member].toString('hex')}`);
    for (let step = 0; step < steps; step++) if (random.nextBernoulli53(k)) batches[step].push(member);
  }
  return batches.map((batch) => Int32Array.from(batch));
}
