import type { JsonValue, LearnHeld, LearnHeldCause, UnlearnHeld } from '@lethe/events';
import type { GuardSettings } from './model-lifecycle.dto';

/**
 * The catastrophic-forgetting guard's verdict on an unlearning step's evidence: an UNLEARN_HELD when test accuracy
 * (evidence.before.testAccuracy, evidence.after.testAccuracy: measured on the model's holdout) fell by more than
 * the guard's limit; null when it did not, or when the evidence has no test accuracy (a model without a holdout).
 */
export function checkGuard(
  guard: Pick<GuardSettings, 'maxTestAccuracyDrop'>,
  evidence: { [key: string]: JsonValue },
  step: { modelId: string; modelVersion: number; requestIds: string[] },
): UnlearnHeld | null {
  const figures = measureDrop(guard, testAccuracyOf(evidence.before), testAccuracyOf(evidence.after));
  if (!figures) return null;
  return { type: 'UNLEARN_HELD', version: 1, modelId: step.modelId, modelVersion: step.modelVersion, requestIds: [...step.requestIds], ...figures };
}

/**
 * The guard's verdict on a version made by learning (online learning's appended batch, a restore): a LEARN_HELD
 * when its test accuracy (`after`, its MODEL_PUBLISHED metrics) is below that of the version it extends on the same
 * holdout (`before`) by more than the limit; null when not, or when either is unknown (a model without a holdout).
 */
export function checkLearnGuard(
  guard: Pick<GuardSettings, 'maxTestAccuracyDrop'>,
  before: number | undefined,
  after: JsonValue | undefined,
  step: { modelId: string; modelVersion: number; fromVersion: number } & ({ cause: 'learn'; learnBatch: number } | { cause: 'restore'; requestIds: string[] }),
): LearnHeld | null {
  const figures = measureDrop(guard, before, after);
  if (!figures) return null;
  const cause: LearnHeldCause = step.cause;
  return {
    type: 'LEARN_HELD',
    version: 1,
    modelId: step.modelId,
    modelVersion: step.modelVersion,
    fromVersion: step.fromVersion,
    cause,
    ...(step.cause === 'learn' ? { learnBatch: step.learnBatch } : { requestIds: [...step.requestIds] }),
    ...figures,
  };
}

/** Test accuracy before and after, the drop and the limit, when the drop exceeds the limit; null otherwise or when either is unknown. */
function measureDrop(
  guard: Pick<GuardSettings, 'maxTestAccuracyDrop'>,
  before: unknown,
  after: unknown,
): Pick<UnlearnHeld, 'testAccuracyBefore' | 'testAccuracyAfter' | 'drop' | 'maxTestAccuracyDrop'> | null {
  if (!isFraction(before) || !isFraction(after)) return null;
  const drop = Math.max(0, before - after);
  if (!(drop > guard.maxTestAccuracyDrop)) return null;
  return { testAccuracyBefore: before, testAccuracyAfter: after, drop, maxTestAccuracyDrop: guard.maxTestAccuracyDrop };
}

function isFraction(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1;
}

function testAccuracyOf(part: JsonValue | undefined): number | undefined {
  if (typeof part !== 'object' || part === null || Array.isArray(part)) return undefined;
  const value = part.testAccuracy;
  return isFraction(value) ? value : undefined;
}
