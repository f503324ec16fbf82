import { validateEvent } from '@lethe/events';
import { checkGuard, checkLearnGuard } from './model-guard';
import { guardOf } from './model-lifecycle.dto';

const step = { modelId: 'm', modelVersion: 2, requestIds: ['r'] };
const evidence = (before: number, after: number) => ({ forgottenCount: 1, before: { retainAccuracy: 1, testAccuracy: before }, after: { retainAccuracy: 1, testAccuracy: after } });

describe('checkGuard', () => {
  it('holds a version whose test accuracy fell by more than the limit, with a valid UNLEARN_HELD', () => {
    const held = checkGuard({ maxTestAccuracyDrop: 0.05 }, evidence(0.9, 0.8), step);
    expect(held).toMatchObject({ type: 'UNLEARN_HELD', modelVersion: 2, requestIds: ['r'], testAccuracyBefore: 0.9, testAccuracyAfter: 0.8, maxTestAccuracyDrop: 0.05 });
    expect(held!.drop).toBeCloseTo(0.1, 12);
    expect(() => validateEvent(held)).not.toThrow();
  });

  it('lets a drop at the limit, a gain, and evidence without test accuracy through', () => {
    expect(checkGuard({ maxTestAccuracyDrop: 0.25 }, evidence(0.75, 0.5), step)).toBeNull(); // exactly 0.25 (binary fractions)
    expect(checkGuard({ maxTestAccuracyDrop: 0 }, evidence(0.5, 0.75), step)).toBeNull();
    expect(checkGuard({ maxTestAccuracyDrop: 0 }, { forgottenCount: 1, recordedIn: 'EVIDENCE_RECORDED' }, step)).toBeNull();
    expect(checkGuard({ maxTestAccuracyDrop: 0 }, { before: { retainAccuracy: 1 }, after: { retainAccuracy: 0 } }, step)).toBeNull();
  });

  it('with limit 0 holds any fall at all', () => {
    expect(checkGuard({ maxTestAccuracyDrop: 0 }, evidence(0.5, 0.49), step)).not.toBeNull();
  });
});

describe('checkLearnGuard', () => {
  const learn = { modelId: 'm', modelVersion: 3, fromVersion: 2, cause: 'learn' as const, learnBatch: 1 };
  it('holds a learned version whose test accuracy fell by more than the limit against the version it extends, with a valid LEARN_HELD', () => {
    const held = checkLearnGuard({ maxTestAccuracyDrop: 0.05 }, 0.875, 0.5, learn);
    expect(held).toEqual({ type: 'LEARN_HELD', version: 1, ...learn, testAccuracyBefore: 0.875, testAccuracyAfter: 0.5, drop: 0.375, maxTestAccuracyDrop: 0.05 });
    expect(() => validateEvent(held)).not.toThrow();
    const restored = checkLearnGuard({ maxTestAccuracyDrop: 0.05 }, 0.875, 0.5, { modelId: 'm', modelVersion: 3, fromVersion: 2, cause: 'restore', requestIds: ['r'] });
    expect(restored).toMatchObject({ cause: 'restore', requestIds: ['r'] });
    expect(restored).not.toHaveProperty('learnBatch');
    expect(() => validateEvent(restored)).not.toThrow();
  });

  it('lets a drop at the limit, a gain, and unknown accuracies through', () => {
    expect(checkLearnGuard({ maxTestAccuracyDrop: 0.25 }, 0.75, 0.5, learn)).toBeNull();
    expect(checkLearnGuard({ maxTestAccuracyDrop: 0 }, 0.5, 0.75, learn)).toBeNull();
    expect(checkLearnGuard({ maxTestAccuracyDrop: 0 }, undefined, 0.5, learn)).toBeNull();
    expect(checkLearnGuard({ maxTestAccuracyDrop: 0 }, 0.5, undefined, learn)).toBeNull();
  });
});

describe('guardOf', () => {
  it('is the default 0.05, checked after publication, for a model that set none; explicit when set', () => {
    expect(guardOf({})).toEqual({ maxTestAccuracyDrop: 0.05, explicit: false });
    expect(guardOf({ guard: {} })).toEqual({ maxTestAccuracyDrop: 0.05, explicit: true });
    expect(guardOf({ guard: { maxTestAccuracyDrop: 0 } })).toEqual({ maxTestAccuracyDrop: 0, explicit: true });
  });
});
