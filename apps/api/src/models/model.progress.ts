import { Progress } from '@lethe/unlearning';

/** Of a model's training or unlearning: the engine's training steps are most of it, publishing and evaluating the rest. */
export const RETRAIN_SHARE = 0.9;

/** Whether the engine reports training steps (of a training or an unlearning), the part it can estimate. */
export function isRetraining(progress: Progress): boolean {
  return progress.phase === 'train' || progress.phase === 'unlearn';
}

/** How much of a model's training or unlearning is done (0..1), from the engine's report on its current phase. */
export function modelDoneFraction(progress: Progress): number {
  return isRetraining(progress) ? RETRAIN_SHARE * progress.fraction : RETRAIN_SHARE + (1 - RETRAIN_SHARE) * progress.fraction;
}
