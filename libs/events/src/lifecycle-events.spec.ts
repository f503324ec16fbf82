import { canonicalizeEvent } from './canonical';
import { LedgerError } from './errors';
import { validateEvent } from './events';

function problemOf(event: object): string | undefined {
  try {
    validateEvent(event);
  } catch (error) {
    if (error instanceof LedgerError) return `${error.field}: ${error.message}`;
    throw error;
  }
  return undefined;
}

const versioned = { type: 'DATASET_VERSIONED', version: 1, datasetId: 'd', datasetVersion: 1, root: 'a'.repeat(64), size: 0 };
const rolledBack = { type: 'MODEL_ROLLED_BACK', version: 1, modelId: 'm', fromVersion: 3, toVersion: 2 };
const held = {
  type: 'UNLEARN_HELD',
  version: 1,
  modelId: 'm',
  modelVersion: 2,
  requestIds: ['r'],
  testAccuracyBefore: 0.9,
  testAccuracyAfter: 0.8,
  drop: 0.1,
  maxTestAccuracyDrop: 0.05,
};
const learnHeld = {
  type: 'LEARN_HELD',
  version: 1,
  modelId: 'm',
  modelVersion: 3,
  fromVersion: 2,
  cause: 'learn',
  learnBatch: 1,
  testAccuracyBefore: 0.9,
  testAccuracyAfter: 0.6,
  drop: 0.3,
  maxTestAccuracyDrop: 0.05,
};
const without = <T extends object>(event: T, field: keyof T) => Object.fromEntries(Object.entries(event).filter(([name]) => name !== field));
const restoreHeld = { ...without(learnHeld, 'learnBatch'), cause: 'restore', requestIds: ['r'] };
const released = { type: 'VERSION_RELEASED', version: 1, modelId: 'm', modelVersion: 2 };
const extended = { type: 'FORGET_EXTENDED', version: 1, requestId: 'r', reason: 'the model is retrained from scratch', newDeadline: '2026-02-03T04:05:06.007Z' };
const scanned = {
  type: 'BIAS_SCANNED',
  version: 1,
  jobId: 'j',
  modelId: 'm',
  modelVersion: 1,
  method: 'leave-one-slice-out',
  metric: 'equalizedOddsDifference',
  gapBefore: 0.12,
  candidates: 100,
  candidatesRoot: 'b'.repeat(64),
};

describe('the data lifecycle events', () => {
  it('are valid as the service writes them, and canonical (keys sorted)', () => {
    for (const event of [versioned, rolledBack, held, learnHeld, restoreHeld, released, extended, scanned, { ...scanned, method: 'influence-functions', gapBefore: -0.5 }])
      expect(problemOf(event)).toBeUndefined();
    expect(canonicalizeEvent(versioned as never)).toBe(
      `{"datasetId":"d","datasetVersion":1,"root":"${'a'.repeat(64)}","size":0,"type":"DATASET_VERSIONED","version":1}`,
    );
    // The held events' bytes, pinned: their schemas share the guard's figures (GUARD_FIGURES), the bytes are as before.
    expect(canonicalizeEvent(held as never)).toBe(
      '{"drop":0.1,"maxTestAccuracyDrop":0.05,"modelId":"m","modelVersion":2,"requestIds":["r"],"testAccuracyAfter":0.8,"testAccuracyBefore":0.9,"type":"UNLEARN_HELD","version":1}',
    );
    expect(canonicalizeEvent(restoreHeld as never)).toBe(
      '{"cause":"restore","drop":0.3,"fromVersion":2,"maxTestAccuracyDrop":0.05,"modelId":"m","modelVersion":3,"requestIds":["r"],"testAccuracyAfter":0.6,"testAccuracyBefore":0.9,"type":"LEARN_HELD","version":1}',
    );
  });

  it.each([
    ['a dataset version 0', { ...versioned, datasetVersion: 0 }, 'datasetVersion: DATASET_VERSIONED.datasetVersion must be at least 1'],
    ['a root that is not hex', { ...versioned, root: 'x' }, 'root: DATASET_VERSIONED.root must be 32 bytes of lowercase hex'],
    ['a negative size', { ...versioned, size: -1 }, 'size: DATASET_VERSIONED.size must be a non-negative integer'],
    ['a rollback forward', { ...rolledBack, toVersion: 3 }, 'toVersion: MODEL_ROLLED_BACK.toVersion must be earlier than fromVersion (3)'],
    ['an accuracy above 1', { ...held, testAccuracyBefore: 1.5 }, 'testAccuracyBefore: UNLEARN_HELD.testAccuracyBefore must be a number in [0, 1]'],
    ['a drop within the limit', { ...held, drop: 0.05 }, 'drop: UNLEARN_HELD.drop must exceed maxTestAccuracyDrop (0.05): a version is held only then'],
    ['no requests', { ...held, requestIds: [] }, 'requestIds: UNLEARN_HELD.requestIds must be a non-empty array of strings'],
    ['a learn hold with another cause', { ...learnHeld, cause: 'forget' }, 'cause: LEARN_HELD.cause must be one of learn, restore'],
    ['a learn hold within the limit', { ...learnHeld, drop: 0.05 }, 'drop: LEARN_HELD.drop must exceed maxTestAccuracyDrop (0.05): a version is held only then'],
    ['a learn hold from a later version', { ...learnHeld, fromVersion: 3 }, 'fromVersion: LEARN_HELD.fromVersion must be earlier than modelVersion (3)'],
    ['a learn hold without its batch', without(learnHeld, 'learnBatch'), "learnBatch: LEARN_HELD.learnBatch must be a learn batch >= 1 when cause is 'learn' (and requestIds absent)"],
    ['a restore hold without its requests', without(restoreHeld, 'requestIds'), "requestIds: LEARN_HELD.requestIds must name the restored requests when cause is 'restore' (and learnBatch absent)"],
    ['a release of version 1.5', { ...released, modelVersion: 1.5 }, 'modelVersion: VERSION_RELEASED.modelVersion must be a non-negative integer'],
    ['a deadline that is no ISO time', { ...extended, newDeadline: '2026-02-03' }, 'newDeadline: FORGET_EXTENDED.newDeadline must be an ISO-8601 UTC time (YYYY-MM-DDTHH:mm:ss.sssZ)'],
    ['a deadline on no real day', { ...extended, newDeadline: '2026-02-31T00:00:00.000Z' }, 'newDeadline: FORGET_EXTENDED.newDeadline must be an ISO-8601 UTC time (YYYY-MM-DDTHH:mm:ss.sssZ)'],
    ['an empty reason', { ...extended, reason: '' }, 'reason: FORGET_EXTENDED.reason must be a non-empty string'],
    ['a scan by another method', { ...scanned, method: 'shapley' }, 'method: BIAS_SCANNED.method must be one of influence-functions, leave-one-slice-out'],
    ['a gap that is no number', { ...scanned, gapBefore: 'wide' }, 'gapBefore: BIAS_SCANNED.gapBefore must be a finite number'],
    ['a candidates root that is not hex', { ...scanned, candidatesRoot: 'x' }, 'candidatesRoot: BIAS_SCANNED.candidatesRoot must be 32 bytes of lowercase hex'],
  ])('are refused with %s, naming the field', (_, event, problem) => {
    expect(problemOf(event)).toBe(problem);
  });
});
