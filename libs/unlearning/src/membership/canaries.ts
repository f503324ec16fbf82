import { UnlearningError } from '../errors';
import { sha256Hex } from '../hash';
import { SeededRandom } from '../random';
import { LabeledExample, Sample } from '../samples';

/** Canary ids start with a NUL character, which no id a person chose is expected to hold; a clash is refused anyway. */
const CANARY_PREFIX = '\u0000lethe-canary-';

export function isCanary(sample: { externalId: string }): boolean {
  return sample.externalId.startsWith(CANARY_PREFIX);
}

/**
 * `injected` + `keptOut` canaries: marker samples that only evaluation-only models ever train on (see measureMembership).
 * Each feature of a canary is that feature of a real sample drawn at random (a different sample per feature),
 * and its label is drawn uniformly: the features stay in the data's ranges but their combination is not one the
 * data holds (noise, for images), and the label is random, so a model can only fit a canary by memorizing it.
 * The evaluation injects the first ones into its "before" model; the others no evaluated model trains on (the
 * non-members); which is which is the draw order, and every canary is drawn alike. Drawn from a PRNG seeded by
 * `seed`: the same data, counts and seed give the same canaries.
 */
export function makeCanaries(
  pool: readonly LabeledExample[],
  counts: { injected: number; keptOut: number },
  numClasses: number,
  seed: string,
): { injected: Sample[]; keptOut: Sample[] } {
  const count = counts.injected + counts.keptOut;
  if (count === 0) return { injected: [], keptOut: [] };
  if (pool.length === 0) throw new UnlearningError('INSUFFICIENT_DATA', 'canaries are drawn from the training samples, and there are none');
  const clash = pool.find(isCanary);
  if (clash) throw new UnlearningError('INVALID_REQUEST', `externalId ${JSON.stringify(clash.externalId)} uses the prefix reserved for canaries`);
  const random = new SeededRandom(`lira-canaries|${seed}`);
  const width = pool[0].features.length;
  const canaries = Array.from({ length: count }, (_, i): Sample => {
    const features = new Float32Array(width);
    for (let f = 0; f < width; f++) features[f] = pool[Math.floor(random.nextFloat() * pool.length)].features[f];
    return {
      externalId: `${CANARY_PREFIX}${i}`,
      features,
      label: Math.floor(random.nextFloat() * numClasses),
      commitment: sha256Hex('lethe-canary|', seed, '\u0000', String(i)),
    };
  });
  return { injected: canaries.slice(0, counts.injected), keptOut: canaries.slice(counts.injected) };
}
