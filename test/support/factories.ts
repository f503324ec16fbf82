import { createHash } from 'node:crypto';
import { LedgerEvent } from '@lethe/events';

/** A deterministic 32-byte hex string from a label. */
export function hexOf(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

/** A valid event whose content depends on `n`, cycling through a few types. */
export function buildEvent(n: number): LedgerEvent {
  switch (n % 3) {
    case 0:
      return { type: 'DATASET_REGISTERED', version: 1, datasetId: `ds-${n}`, name: `dataset ${n}`, features: 4, classes: 3 };
    case 1:
      return { type: 'SAMPLES_COMMITTED', version: 1, datasetId: `ds-${n}`, commitmentsRoot: hexOf(`root-${n}`), count: n };
    default:
      return {
        type: 'FORGET_REQUESTED',
        version: 1,
        requestId: `fr-${n}`,
        datasetId: `ds-${n}`,
        commitments: [hexOf(`c-${n}`)],
        reason: 'erasure request',
      };
  }
}

export function buildEvents(from: number, count: number): LedgerEvent[] {
  return Array.from({ length: count }, (_, i) => buildEvent(from + i));
}
