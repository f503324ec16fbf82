import { LedgerError } from './errors';

/**
 * UNLEARN_COMPLETED.evidence.membership: a per-example membership-inference attack (LiRA, Carlini et al. 2022,
 * applied per forgotten example as U-LiRA, Hayes et al. 2024) on the model before the forget, after it, and a
 * reference retrained without the samples under another seed; read as TPR at 1% and 0.1% FPR and ROC AUC, each
 * with a 95% bootstrap interval, on the ensemble (`tprAt1pctFpr`, ...) and on the shard model that held each
 * sample (`perMember`). Absent in entries written before the attack existed, and in evidence that did not ask
 * for it; `skipped` says why an asked-for attack was not run.
 */
export type MembershipSide = 'before' | 'after' | 'reference';
export const MEMBERSHIP_SIDES: readonly MembershipSide[] = ['before', 'after', 'reference'];

export type BySide<T> = { before: T; after: T; reference: T };
export type MembershipInterval = [number, number];

/** One attack's figures on the three models. A TPR is null when the non-members are too few to resolve its FPR. */
export type MembershipAttackFigures = {
  tprAt1pctFpr: BySide<number | null>;
  tprAt01pctFpr: BySide<number | null>;
  auc: BySide<number>;
  ci95: {
    tprAt1pctFpr: BySide<MembershipInterval | null>;
    tprAt01pctFpr: BySide<MembershipInterval | null>;
    auc: BySide<MembershipInterval>;
  };
  /**
   * When the figures are the canaries' (population 'canaries') and there are enough held-out samples: the
   * fraction of the forgotten samples flagged at the threshold that flags 1% of the held-out ones.
   */
  forgottenAt1pctFpr?: BySide<number>;
};

export const MEMBERSHIP_MEASURES = ['tprAt1pctFpr', 'tprAt01pctFpr', 'auc'] as const;
export type MembershipMeasure = (typeof MEMBERSHIP_MEASURES)[number];

export type MembershipEvidence = {
  /** What was run, in words. */
  attack: string;
  shadowModels: number;
  /** The samples the attack asks about that the "before" model learned: forgotten ones and injected canaries. */
  members: { forgotten: number; canaries: number };
  /** Samples no evaluated model learned: held-out ones and canaries kept out. */
  nonMembers: { heldOut: number; canaries: number };
  /**
   * Whose members and non-members the figures compare: 'canaries' (injected vs kept out, when there are canaries)
   * or 'forgotten' (forgotten vs held-out samples). Each pair is alike but for membership, as a figure needs:
   * canaries are memorized far more than real samples, so mixing the two kinds would compare kinds, not membership.
   */
  population?: 'canaries' | 'forgotten';
  /**
   * What a model that learned nothing scores on this population: a TPR at an FPR read from n non-members is
   * (floor(FPR * n) + 1) / (n + 1) on average, a little above the FPR (null where n cannot resolve it); AUC 0.5.
   */
  chance?: { tprAt1pctFpr: number | null; tprAt01pctFpr: number | null; auc: number };
  /** Present when the attack was not run, saying why (too few members or non-members for its intervals...). */
  skipped?: { reason: string };
  /** 'fixed': one IN and one OUT variance pooled over all examples (fewer than 64 shadow models); else per example. */
  variance?: 'fixed' | 'per-example';
  /** Bootstrap replicates behind each interval. */
  bootstrap?: number;
  /** The SHA-256 of the three models attacked; evaluationOnly when canaries made the evaluation train its own copies. */
  models?: { before: string; after: string; reference: string; evaluationOnly: boolean; afterIsPublished: boolean };
  perMember?: MembershipAttackFigures;
} & Partial<MembershipAttackFigures>;

const HEX32 = /^[0-9a-f]{64}$/;

/** Checks evidence.membership's shape; throws LedgerError('INVALID_EVENT') naming the field. */
export function checkMembershipEvidence(value: unknown, path: string): void {
  const fail = (field: string, want: string): never => {
    throw new LedgerError('INVALID_EVENT', `${path}.${field} must be ${want}`, `evidence.membership.${field}`);
  };
  const object = (v: unknown, field: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'an object');
  const count = (v: unknown, field: string) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, 'a non-negative integer');
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new LedgerError('INVALID_EVENT', `${path} must be an object`, 'evidence.membership');
  const m = value as Record<string, unknown>;
  if (typeof m.attack !== 'string' || m.attack.length === 0) fail('attack', 'a non-empty string');
  count(m.shadowModels, 'shadowModels');
  for (const group of ['members', 'nonMembers'] as const) {
    const counts = object(m[group], group);
    count(counts[group === 'members' ? 'forgotten' : 'heldOut'], `${group}.${group === 'members' ? 'forgotten' : 'heldOut'}`);
    count(counts.canaries, `${group}.canaries`);
  }
  if (m.skipped !== undefined) {
    const skipped = object(m.skipped, 'skipped');
    if (typeof skipped.reason !== 'string' || skipped.reason.length === 0) fail('skipped.reason', 'a non-empty string');
    return;
  }
  if (m.population !== 'canaries' && m.population !== 'forgotten') fail('population', "'canaries' or 'forgotten'");
  const chance = object(m.chance, 'chance');
  for (const measure of MEMBERSHIP_MEASURES) {
    const v = chance[measure];
    if (!((v === null && measure !== 'auc') || (typeof v === 'number' && v >= 0 && v <= 1)))
      fail(`chance.${measure}`, measure === 'auc' ? 'a number in [0, 1]' : 'null or a number in [0, 1]');
  }
  if (m.variance !== 'fixed' && m.variance !== 'per-example') fail('variance', "'fixed' or 'per-example'");
  count(m.bootstrap, 'bootstrap');
  const models = object(m.models, 'models');
  for (const side of MEMBERSHIP_SIDES) if (typeof models[side] !== 'string' || !HEX32.test(models[side] as string)) fail(`models.${side}`, '32 bytes of lowercase hex');
  for (const flag of ['evaluationOnly', 'afterIsPublished']) if (typeof models[flag] !== 'boolean') fail(`models.${flag}`, 'a boolean');
  checkFigures(m, '', fail, object);
  if (m.perMember !== undefined) checkFigures(object(m.perMember, 'perMember'), 'perMember.', fail, object);
}

function checkFigures(
  figures: Record<string, unknown>,
  prefix: string,
  fail: (field: string, want: string) => never,
  object: (v: unknown, field: string) => Record<string, unknown>,
): void {
  const fraction = (v: unknown, field: string, nullable: boolean) => {
    if (v === null && nullable) return;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(field, nullable ? 'null or a number in [0, 1]' : 'a number in [0, 1]');
  };
  const ci95 = object(figures.ci95, `${prefix}ci95`);
  for (const measure of MEMBERSHIP_MEASURES) {
    const nullable = measure !== 'auc';
    const values = object(figures[measure], `${prefix}${measure}`);
    const intervals = object(ci95[measure], `${prefix}ci95.${measure}`);
    for (const side of MEMBERSHIP_SIDES) {
      fraction(values[side], `${prefix}${measure}.${side}`, nullable);
      const interval = intervals[side];
      const field = `${prefix}ci95.${measure}.${side}`;
      if (interval === null && nullable && values[side] === null) continue;
      if (!Array.isArray(interval) || interval.length !== 2) fail(field, nullable ? 'null (with a null value) or [low, high]' : '[low, high]');
      fraction(interval[0], `${field}[0]`, false);
      fraction(interval[1], `${field}[1]`, false);
      if (interval[0] > interval[1]) fail(field, '[low, high] with low <= high');
    }
  }
  if (figures.forgottenAt1pctFpr !== undefined) {
    const flagged = object(figures.forgottenAt1pctFpr, `${prefix}forgottenAt1pctFpr`);
    for (const side of MEMBERSHIP_SIDES) fraction(flagged[side], `${prefix}forgottenAt1pctFpr.${side}`, false);
  }
}
