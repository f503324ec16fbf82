import { SeededRandom } from '../random';

/**
 * Which shadow model trains on which candidate: each candidate is IN exactly floor(N/2) of the N shadows,
 * chosen by a permutation of the shadows drawn from a PRNG seeded by the evaluation seed and the candidate's
 * externalId (LiRA's reference code draws a random half per example in the same spirit). Depends only on the
 * seed, the count and each candidate, so adding a candidate moves no other candidate between IN and OUT.
 * Layout: `inclusion[k * candidates.length + j]` is 1 when shadow k trains on candidate j.
 */
export function planInclusion(candidates: readonly { externalId: string }[], shadows: number, seed: string): Uint8Array {
  const inclusion = new Uint8Array(shadows * candidates.length);
  const half = Math.floor(shadows / 2);
  const order = new Int32Array(shadows);
  candidates.forEach((candidate, j) => {
    const random = new SeededRandom(`lira-inclusion|${seed}\u0000${candidate.externalId}`);
    for (let k = 0; k < shadows; k++) order[k] = k;
    for (let k = shadows - 1; k > 0; k--) {
      const swap = Math.floor(random.nextFloat() * (k + 1));
      [order[k], order[swap]] = [order[swap], order[k]];
    }
    for (let k = 0; k < half; k++) inclusion[order[k] * candidates.length + j] = 1;
  });
  return inclusion;
}

/** The seed of shadow model k, and of the reference retrain, derived from the model's seed. */
export function shadowSeed(seed: string, k: number): string {
  return `${seed}|lira-shadow-${k}`;
}

export function referenceSeed(seed: string): string {
  return `${seed}|lira-reference`;
}
