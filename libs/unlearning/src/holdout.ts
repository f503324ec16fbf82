import { UnlearningError } from './errors';
import { sha256 } from './hash';
import { LabeledExample } from './samples';

/** The largest holdout fraction accepted: at least half of the data is always trained on. */
export const MAX_HOLDOUT_FRACTION = 0.5;

/** 2^48: the first 6 bytes of the hash, read as an integer, divided by this are a uniform number in [0, 1). */
const HOLDOUT_SCALE = 2 ** 48;

/**
 * Where a sample falls in [0, 1): the first 6 bytes of SHA-256("lethe-holdout|" seed 0x00 externalId) as an
 * integer / 2^48. It depends on the seed and the sample's externalId only, never on the other samples.
 */
export function computeHoldoutPoint(seed: string | number, externalId: string): number {
  return sha256('lethe-holdout|', String(seed), '\u0000', externalId).readUIntBE(0, 6) / HOLDOUT_SCALE;
}

/**
 * Whether a sample is held out of training (kept as test data): its holdout point is below `fraction`.
 * Unlike splitTrainTest, which ranks all examples, the answer for one sample never changes when other samples
 * are added or forgotten, so a model unlearned from a set F equals one trained from scratch without F on
 * the same rule. A numeric seed counts as its decimal string, as in the engine's config.
 */
export function isHeldOut(externalId: string, options: { seed: string | number; fraction: number }): boolean {
  checkHoldoutFraction(options.fraction);
  return options.fraction > 0 && computeHoldoutPoint(options.seed, externalId) < options.fraction;
}

/** The examples in their order, split by isHeldOut into those trained on and those held out. */
export function splitHoldout<T extends LabeledExample>(
  examples: readonly T[],
  options: { seed: string | number; fraction: number },
): { train: T[]; holdout: T[] } {
  checkHoldoutFraction(options.fraction);
  const train: T[] = [];
  const holdout: T[] = [];
  for (const example of examples) (isHeldOut(example.externalId, options) ? holdout : train).push(example);
  return { train, holdout };
}

function checkHoldoutFraction(fraction: number): void {
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= MAX_HOLDOUT_FRACTION))
    throw new UnlearningError(
      'INVALID_CONFIG',
      `holdoutFraction must be a number in [0, ${MAX_HOLDOUT_FRACTION}], got ${String(fraction)}`,
    );
}
