import { UnlearningError } from '../errors';
import { DEFAULT_BOOTSTRAP } from './attack-metrics';

/** What a membership evaluation is asked to do. */
export interface MembershipOptions {
  /** Shadow models trained IN/OUT of each candidate: MEMBERSHIP_LIMITS.shadowModels. */
  shadowModels: number;
  /**
   * Canaries injected into the evaluation's own copy of the model and forgotten, and as many kept out: 0 (the
   * default), or MEMBERSHIP_LIMITS.canaries.min up to .max.
   */
  canaries?: number;
  /** Bootstrap replicates per interval (default 1000). */
  bootstrap?: number;
}

/**
 * The ranges the options take, and the least an evaluation needs for its intervals to mean something.
 * - shadowModels 4..256: 4 gives every candidate 2 IN and 2 OUT shadow scores, the fewest that fit a mean and
 *   (pooled) a variance; 256 is the most Carlini et al. train, past which their attack stops improving. Each
 *   shadow model costs one training of the model, so a forget with 16 costs about 17 trainings more.
 * - at least 20 members (forgotten samples, or injected canaries): a bootstrap interval of a TPR over fewer is
 *   too coarse (it moves in steps of 1/members) and, from a handful, degenerate (3 of 3 detected resamples to
 *   [1, 1]);
 * - at least 100 non-members (held-out samples, or the canaries kept out): a TPR at 1% FPR is read at the
 *   threshold that at most 1% of the non-members exceed, which takes 100 of them; the TPR at 0.1% FPR is
 *   reported from 1,000 on;
 * - so canaries are 0 (none) or 100..1000, as many injected as kept out: then every shadow model trains on as many
 *   canaries, on average, as the evaluation's "before" copy (half of the 2n), and the two sides are alike.
 *   The upper bound keeps the copies' extra training (n samples) and the shadows' (n, plus the held-out half) in
 *   proportion to data sets of thousands of samples.
 * - at most 1,000 held-out samples are used (a seeded subset), as the other evaluations use 1,000 retained ones.
 */
export const MEMBERSHIP_LIMITS = {
  shadowModels: { min: 4, max: 256 },
  canaries: { min: 100, max: 1000 },
  bootstrap: { min: 100, max: 100_000 },
  minMembers: 20,
  minNonMembers: 100,
  maxHeldOut: 1000,
} as const;

/** Shadow models when a caller asks for the attack without a count: with fewer than 64 the variances are pooled. */
export const DEFAULT_SHADOW_MODELS = 16;

/** The options with their defaults, checked; throws INVALID_REQUEST naming the field (`membership.shadowModels`). */
export function checkMembershipOptions(options: MembershipOptions): Required<MembershipOptions> {
  if (options === null || typeof options !== 'object') throw new UnlearningError('INVALID_REQUEST', 'membership must be an object');
  const checked = { shadowModels: options.shadowModels, canaries: options.canaries ?? 0, bootstrap: options.bootstrap ?? DEFAULT_BOOTSTRAP };
  for (const name of ['shadowModels', 'canaries', 'bootstrap'] as const) {
    const { min, max } = MEMBERSHIP_LIMITS[name];
    const value = checked[name];
    const zero = name === 'canaries' && value === 0;
    if (typeof value !== 'number' || !Number.isInteger(value) || ((value < min || value > max) && !zero))
      throw new UnlearningError('INVALID_REQUEST', `membership.${name} must be ${name === 'canaries' ? '0 or ' : ''}an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return checked;
}
