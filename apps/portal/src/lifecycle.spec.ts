import type { LedgerEvent } from '@lethe/events';
import { applyExtensions, buildLifecycle } from './lifecycle';

const at = (events: LedgerEvent[]) => events.map((event, index) => ({ index, leafHash: '', event }));
const root = 'a'.repeat(64);

describe('buildLifecycle', () => {
  it('pairs held versions with their releases, lists rollbacks, dataset versions and extensions', () => {
    const lifecycle = buildLifecycle(
      at([
        { type: 'DATASET_VERSIONED', version: 1, datasetId: 'd', datasetVersion: 1, root, size: 3 },
        { type: 'UNLEARN_HELD', version: 1, modelId: 'm', modelVersion: 2, requestIds: ['r'], testAccuracyBefore: 0.9, testAccuracyAfter: 0.5, drop: 0.4, maxTestAccuracyDrop: 0.05 },
        { type: 'DATASET_VERSIONED', version: 1, datasetId: 'd', datasetVersion: 2, root, size: 2 },
        { type: 'VERSION_RELEASED', version: 1, modelId: 'm', modelVersion: 2 },
        { type: 'MODEL_ROLLED_BACK', version: 1, modelId: 'm', fromVersion: 3, toVersion: 2 },
        { type: 'FORGET_EXTENDED', version: 1, requestId: 'r', reason: 'backlog', newDeadline: '2026-03-01T00:00:00.000Z' },
      ]),
    );
    expect(lifecycle.held.get('m/2')).toMatchObject({ index: 1, releasedIndex: 3 });
    expect(lifecycle.rollbacks.map((r) => r.index)).toEqual([4]);
    expect(lifecycle.datasetVersions.get('d')!.map((v) => v.event.datasetVersion)).toEqual([1, 2]);
    expect(lifecycle.extensions.get('r')).toMatchObject({ index: 5 });
    expect(lifecycle.problems).toEqual([]);
  });

  it('pairs a version a learn made and the guard held (LEARN_HELD) with its release', () => {
    const lifecycle = buildLifecycle(
      at([
        { type: 'LEARN_HELD', version: 1, modelId: 'm', modelVersion: 2, fromVersion: 1, cause: 'learn', learnBatch: 1, testAccuracyBefore: 0.95, testAccuracyAfter: 0.43, drop: 0.52, maxTestAccuracyDrop: 0.05 },
        { type: 'VERSION_RELEASED', version: 1, modelId: 'm', modelVersion: 2 },
      ]),
    );
    expect(lifecycle.held.get('m/2')).toMatchObject({ index: 0, releasedIndex: 1, event: { type: 'LEARN_HELD', cause: 'learn' } });
    expect(lifecycle.problems).toEqual([]);
  });

  it('finds a release of a version never held and a gap in a dataset\'s versions', () => {
    const lifecycle = buildLifecycle(
      at([
        { type: 'VERSION_RELEASED', version: 1, modelId: 'm', modelVersion: 2 },
        { type: 'DATASET_VERSIONED', version: 1, datasetId: 'd', datasetVersion: 2, root, size: 2 },
      ]),
    );
    expect(lifecycle.problems).toEqual([
      'entry 0 (VERSION_RELEASED) releases model m version 2, which no UNLEARN_HELD or LEARN_HELD before it held',
      'entry 1 (DATASET_VERSIONED) is version 2 of dataset d, want 1',
    ]);
  });
});

describe('applyExtensions', () => {
  const extensions = buildLifecycle(
    at([{ type: 'FORGET_EXTENDED', version: 1, requestId: 'r', reason: 'backlog', newDeadline: '2026-03-01T00:00:00.000Z' }]),
  ).extensions;
  const deadline = Date.parse('2026-03-01T00:00:00.000Z') / 1000;
  const timing = (requestId: string, end: number | null) => ({ requestId, late: true, requestAnchor: { timestamp: 0 }, unlearnAnchor: end === null ? null : { timestamp: end } });

  it('judges an extended request by its new deadline, and leaves the others as they were', () => {
    const [onTime, late, pending, other] = applyExtensions(
      [timing('r', deadline - 1), timing('r', deadline + 1), timing('r', null), timing('q', 5)],
      extensions,
      deadline - 100,
    );
    expect(onTime).toMatchObject({ late: false, extension: { index: 0, reason: 'backlog' } });
    expect(late.late).toBe(true);
    expect(pending.late).toBe(false);
    expect(other).toMatchObject({ late: true, extension: null });
  });
});
