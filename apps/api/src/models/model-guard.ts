import type { JsonValue, UnlearnHeld } from '@lethe/events';
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
  const before = testAccuracyOf(evidence.before);
  const after = testAccuracyOf(evidence.after);
  if (before === undefined || after === undefined) return null;
  const drop = Math.max(0, before - after);
  if (!(drop > guard.maxTestAccuracyDrop)) return null;
  return {
    type: 'UNLEARN_HELD',
    version: 1,
    modelId: step.modelId,
    modelVersion: step.modelVersion,
    requestIds: [...step.requestIds],
    testAccuracyBefore: before,
    testAccuracyAfter: after,
    drop,
    maxTestAccuracyDrop: guard.maxTestAccuracyDrop,
  };
}

function testAccuracyOf(part: JsonValue | undefined): number | undefined {
  if (typeof part !== 'object' || part === null || Array.isArray(part)) return undefined;
  const value = part.testAccuracy;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined;
}
