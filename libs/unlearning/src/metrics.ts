import { Predictions } from './serve';

/** Fraction of rows whose predicted label equals the true label; NaN-free: 0 rows give 0. */
export function computeAccuracy(predictions: Predictions, labels: readonly number[]): number {
  if (labels.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions.labels[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** Per-row cross-entropy -log p(true label), with p floored at 1e-12. */
export function computeLosses(predictions: Predictions, labels: readonly number[]): number[] {
  return labels.map((label, i) => -Math.log(Math.max(predictions.probabilities[i * predictions.classes + label], 1e-12)));
}

/**
 * Loss-threshold membership inference, summarized as ROC AUC: the probability that a random member
 * (here: a forgotten sample) has a lower loss than a random non-member (a held-out test sample), ties
 * counting one half. Computed by ranks (Mann-Whitney U) with average ranks for ties.
 * 0.5 means the attacker cannot tell forgotten samples from never-seen ones.
 */
export function computeMembershipAuc(memberLosses: readonly number[], nonMemberLosses: readonly number[]): number {
  const m = memberLosses.length;
  const n = nonMemberLosses.length;
  if (m === 0 || n === 0) return 0.5;
  // Score = -loss: a higher score means "more likely a member".
  const all = [
    ...memberLosses.map((loss) => ({ score: -loss, member: true })),
    ...nonMemberLosses.map((loss) => ({ score: -loss, member: false })),
  ].sort((a, b) => a.score - b.score);
  let memberRankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].score === all[i].score) j++;
    const averageRank = (i + 1 + j) / 2; // ranks i+1..j
    for (let k = i; k < j; k++) if (all[k].member) memberRankSum += averageRank;
    i = j;
  }
  const u = memberRankSum - (m * (m + 1)) / 2;
  return u / (m * n);
}
