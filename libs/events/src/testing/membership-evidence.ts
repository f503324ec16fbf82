// A well-formed UNLEARN_COMPLETED.evidence.membership for tests: 200 injected canaries vs 200 kept out, the
// ensemble and per-member figures alike (TPR at 0.1% FPR not resolvable over 200 non-members).
import type { BySide, MembershipAttackFigures, MembershipEvidence } from '../membership-evidence';

export const bySide = <T>(before: T, after: T = before, reference: T = after): BySide<T> => ({ before, after, reference });

export const MEMBERSHIP_FIGURES: MembershipAttackFigures = {
  tprAt1pctFpr: bySide(0.9, 0.01, 0),
  tprAt01pctFpr: bySide<number | null>(null),
  auc: bySide(0.99, 0.5, 0.48),
  ci95: {
    tprAt1pctFpr: bySide<[number, number] | null>([0.8, 1], [0, 0.05], [0, 0.03]),
    tprAt01pctFpr: bySide<[number, number] | null>(null),
    auc: bySide<[number, number]>([0.98, 1], [0.4, 0.6], [0.38, 0.58]),
  },
};

export const MEMBERSHIP_EVIDENCE: MembershipEvidence = {
  attack: 'LiRA',
  shadowModels: 16,
  members: { forgotten: 3, canaries: 200 },
  nonMembers: { heldOut: 0, canaries: 200 },
  population: 'canaries',
  chance: { tprAt1pctFpr: 0.0149, tprAt01pctFpr: null, auc: 0.5 },
  variance: 'fixed',
  bootstrap: 1000,
  models: { before: 'c'.repeat(64), after: 'b'.repeat(64), reference: 'd'.repeat(64), evaluationOnly: true, afterIsPublished: true },
  ...MEMBERSHIP_FIGURES,
  perMember: { ...MEMBERSHIP_FIGURES, forgottenAt1pctFpr: bySide(2 / 3, 0, 0) },
};
