import { UnlearningError } from '../errors';
import { DEFAULT_BOOTSTRAP } from './attack-metrics';

/** What a membership evaluation is asked to do. */
export interface MembershipOptions {
  /** Shadow models trained IN/OUT of each candidate: MEMBERSHIP_LIMITS.shadowModels. */
  shadowModels: number;
  /**
   * Canaries injected into the evaluation's own copy of the model and forgotten (default 0), and as many kept out
   * (at least MEMBERSHIP_LIMITS.minNonMembers). 0, or MEMBERSHIP_LIMITS.minMembers up to canaries.max.
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
 *   [1, 1]); so canaries are 0 (none) or 20..1000;
 * - at least 100 non-members (held-out samples, or canaries kept out: as many as injected, at least 100): a TPR at
 *   1% FPR is read at the threshold that at most 1% of the non-members exceed, which takes 100 of them; the TPR
 *   at 0.1% FPR is reported from 1,000 on.
 * - at most 1,000 held-out samples are used (a seeded subset), as the other evaluations use 1,000 retained ones.
 */
export const MEMBERSHIP_LIMITS = {
  shadowModels: { min: 4, max: 256 },
  canaries: { min: 0, max: 1000 },
  bootstrap: { min: 100, max: 100_000 },
  minMembers: 20,
  minNonMembers: 100,
  maxHeldOut: 1000,
} as const;

/** The options with their defaults, checked; throws INVALID_REQUEST naming the field (`membership.shadowModels`). */
export function checkMembershipOptions(options: MembershipOptions): Required<MembershipOptions> {
  if (options === null || typeof options !== 'object') throw new UnlearningError('INVALID_REQUEST', 'membership must be an object');
  const checked = { shadowModels: options.shadowModels, canaries: options.canaries ?? 0, bootstrap: options.bootstrap ?? DEFAULT_BOOTSTRAP };
  for (const name of ['shadowModels', 'canaries', 'bootstrap'] as const) {
    const { min, max } = MEMBERSHIP_LIMITS[name];
    const value = checked[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw new UnlearningError('INVALID_REQUEST', `membership.${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  if (checked.canaries > 0 && checked.canaries < MEMBERSHIP_LIMITS.minMembers)
    throw new UnlearningError(
      'INVALID_REQUEST',
      `membership.canaries must be 0 or at least ${MEMBERSHIP_LIMITS.minMembers} (the members the attack's intervals need), got ${checked.canaries}`,
    );
  return checked;
}
