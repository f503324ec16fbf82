import { SeededRandom } from '../random';

/** The false-positive rates the attack is read at (Carlini et al. 2022 read attacks at low FPR, not by accuracy). */
export const FPR_LEVELS = { tprAt1pctFpr: 0.01, tprAt01pctFpr: 0.001 } as const;
export type TprMeasure = keyof typeof FPR_LEVELS;

/** How many bootstrap replicates the 95% intervals are taken from. */
export const DEFAULT_BOOTSTRAP = 1000;

/** A 95% interval [low, high]. */
export type Interval = [number, number];

/**
 * One attack on one model: TPR at each FPR level and ROC AUC, with percentile bootstrap 95% intervals.
 * A TPR is null when there are too few non-members to resolve its FPR (fewer than 1/FPR of them).
 */
export interface AttackFigures {
  tprAt1pctFpr: number | null;
  tprAt01pctFpr: number | null;
  auc: number;
  ci95: { tprAt1pctFpr: Interval | null; tprAt01pctFpr: Interval | null; auc: Interval };
}

/** Scores of members and non-members merged and sorted from the most member-like down. */
interface Ranked {
  scores: Float64Array;
  member: Uint8Array;
  /** Position in `scores` of members[i] and of nonMembers[i]. */
  memberAt: Int32Array;
  nonMemberAt: Int32Array;
}

function rank(members: ArrayLike<number>, nonMembers: ArrayLike<number>): Ranked {
  const all = [
    ...Array.from(members, (score, i) => ({ score, member: 1, i })),
    ...Array.from(nonMembers, (score, i) => ({ score, member: 0, i })),
  ].sort((a, b) => b.score - a.score);
  const ranked: Ranked = {
    scores: Float64Array.from(all, (e) => e.score),
    member: Uint8Array.from(all, (e) => e.member),
    memberAt: new Int32Array(members.length),
    nonMemberAt: new Int32Array(nonMembers.length),
  };
  all.forEach((e, at) => ((e.member ? ranked.memberAt : ranked.nonMemberAt)[e.i] = at));
  return ranked;
}

/**
 * TPR at each FPR level and AUC of a weighted sample in one pass down the ranking (weights are bootstrap
 * multiplicities; all 1 for the sample itself). A threshold flags the scores strictly above it; the TPR at FPR
 * level a is the largest TPR over thresholds that flag at most floor(a * non-members) non-members. AUC is
 * Mann-Whitney's: the chance that a member outscores a non-member, ties counting one half.
 */
function measure(ranked: Ranked, weight: Float64Array | null, memberCount: number, nonMemberCount: number): number[] {
  const { scores, member } = ranked;
  const allowed = Object.values(FPR_LEVELS).map((fpr) => Math.floor(fpr * nonMemberCount + 1e-9));
  const tpr = allowed.map(() => 0);
  let membersAbove = 0;
  let nonMembersAbove = 0;
  let aucSum = 0;
  for (let i = 0; i < scores.length; ) {
    allowed.forEach((limit, k) => {
      if (nonMembersAbove <= limit) tpr[k] = membersAbove;
    });
    let groupMembers = 0;
    let groupNonMembers = 0;
    let j = i;
    for (; j < scores.length && scores[j] === scores[i]; j++) {
      const w = weight ? weight[j] : 1;
      if (member[j]) groupMembers += w;
      else groupNonMembers += w;
    }
    aucSum += groupMembers * (nonMemberCount - nonMembersAbove - groupNonMembers / 2);
    membersAbove += groupMembers;
    nonMembersAbove += groupNonMembers;
    i = j;
  }
  allowed.forEach((limit, k) => {
    if (nonMembersAbove <= limit) tpr[k] = membersAbove;
  });
  return [...tpr.map((t) => t / memberCount), aucSum / (memberCount * nonMemberCount)];
}

/**
 * The fraction of `members` flagged at the threshold that flags at most 1% of `nonMembers` (no interval: for a
 * handful of members, such as the samples of one forget request).
 */
export function flaggedAt1pctFpr(members: ArrayLike<number>, nonMembers: ArrayLike<number>): number {
  if (members.length === 0 || nonMembers.length === 0) throw new RangeError('an attack needs members and non-members to measure');
  return round(measure(rank(members, nonMembers), null, members.length, nonMembers.length)[0]);
}

/**
 * What a model that learned nothing scores: its members and non-members are alike, so a member lands above the
 * threshold that lets through floor(fpr * n) of the n non-members with chance (floor(fpr * n) + 1) / (n + 1),
 * a little above the FPR itself (1.98% at 1% FPR over 100 non-members, 1.10% over 1,000); null where the
 * non-members cannot resolve the FPR. The AUC of such a model is 0.5.
 */
export function chanceLevels(nonMembers: number): { tprAt1pctFpr: number | null; tprAt01pctFpr: number | null; auc: number } {
  const at = (fpr: number) => (nonMembers * fpr >= 1 - 1e-9 ? round((Math.floor(fpr * nonMembers + 1e-9) + 1) / (nonMembers + 1)) : null);
  return { tprAt1pctFpr: at(FPR_LEVELS.tprAt1pctFpr), tprAt01pctFpr: at(FPR_LEVELS.tprAt01pctFpr), auc: 0.5 };
}

/** The q-quantile of sorted values, interpolated linearly between order statistics. */
function quantile(sorted: Float64Array, q: number): number {
  const at = q * (sorted.length - 1);
  const below = Math.floor(at);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - below);
}

/**
 * The attack's figures on one model, from the scores it gave its members and its non-members (higher = more
 * member-like), with 95% intervals from `replicates` stratified bootstrap samples (members and non-members are
 * resampled separately, so every replicate keeps their counts) drawn from a PRNG seeded by `label`: the same
 * scores and label always give the same intervals.
 */
export function summarizeAttack(
  members: ArrayLike<number>,
  nonMembers: ArrayLike<number>,
  label: string,
  replicates = DEFAULT_BOOTSTRAP,
): AttackFigures {
  if (members.length === 0 || nonMembers.length === 0) throw new RangeError('an attack needs members and non-members to measure');
  const ranked = rank(members, nonMembers);
  const point = measure(ranked, null, members.length, nonMembers.length);
  const random = new SeededRandom(`lira-bootstrap|${label}`);
  const draws = point.map(() => new Float64Array(replicates));
  const weight = new Float64Array(ranked.scores.length);
  for (let b = 0; b < replicates; b++) {
    weight.fill(0);
    for (let i = 0; i < members.length; i++) weight[ranked.memberAt[Math.floor(random.nextFloat() * members.length)]]++;
    for (let i = 0; i < nonMembers.length; i++) weight[ranked.nonMemberAt[Math.floor(random.nextFloat() * nonMembers.length)]]++;
    measure(ranked, weight, members.length, nonMembers.length).forEach((value, k) => (draws[k][b] = value));
  }
  const interval = (k: number): Interval => {
    const sorted = draws[k].sort();
    return [round(quantile(sorted, 0.025)), round(quantile(sorted, 0.975))];
  };
  const resolvable = Object.values(FPR_LEVELS).map((fpr) => nonMembers.length * fpr >= 1 - 1e-9);
  return {
    tprAt1pctFpr: resolvable[0] ? round(point[0]) : null,
    tprAt01pctFpr: resolvable[1] ? round(point[1]) : null,
    auc: round(point[2]),
    ci95: { tprAt1pctFpr: resolvable[0] ? interval(0) : null, tprAt01pctFpr: resolvable[1] ? interval(1) : null, auc: interval(2) },
  };
}

/** Figures are recorded to 4 decimals (a TPR over 10,000 members moves by 0.0001). */
function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}
