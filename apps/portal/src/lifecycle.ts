// The data lifecycle as the log tells it (issue 14): versions the forgetting guard held and their releases,
// rollbacks, dataset versions, and forget-request extensions. Pure functions over the verified entries.
import type { DatasetVersioned, ForgetExtended, LearnHeld, ModelRolledBack, UnlearnHeld } from '@lethe/events';
import type { LogEntry } from './derive';

export interface HeldVersion {
  /** The UNLEARN_HELD entry (a version made by unlearning), or LEARN_HELD (by a learn or a restore). */
  index: number;
  event: UnlearnHeld | LearnHeld;
  /** The VERSION_RELEASED entry that released it (null: still held). */
  releasedIndex: number | null;
}

export interface Lifecycle {
  /** By `${modelId}/${modelVersion}`: the first UNLEARN_HELD or LEARN_HELD of each version, and its release. */
  held: Map<string, HeldVersion>;
  rollbacks: { index: number; event: ModelRolledBack }[];
  /** By dataset, in log order. */
  datasetVersions: Map<string, { index: number; event: DatasetVersioned }[]>;
  /** By request: the first FORGET_EXTENDED of each. */
  extensions: Map<string, { index: number; event: ForgetExtended }>;
  /** What does not add up (a release of a version never held, a rollback to a retired one is the verifier's). */
  problems: string[];
}

export function buildLifecycle(entries: LogEntry[]): Lifecycle {
  const lifecycle: Lifecycle = { held: new Map(), rollbacks: [], datasetVersions: new Map(), extensions: new Map(), problems: [] };
  for (const { index, event } of entries) {
    switch (event?.type) {
      case 'UNLEARN_HELD':
      case 'LEARN_HELD': {
        const key = `${event.modelId}/${event.modelVersion}`;
        if (!lifecycle.held.has(key)) lifecycle.held.set(key, { index, event, releasedIndex: null });
        break;
      }
      case 'VERSION_RELEASED': {
        const held = lifecycle.held.get(`${event.modelId}/${event.modelVersion}`);
        if (!held) lifecycle.problems.push(`entry ${index} (VERSION_RELEASED) releases model ${event.modelId} version ${event.modelVersion}, which no UNLEARN_HELD or LEARN_HELD before it held`);
        else if (held.releasedIndex === null) held.releasedIndex = index;
        break;
      }
      case 'MODEL_ROLLED_BACK':
        lifecycle.rollbacks.push({ index, event });
        break;
      case 'DATASET_VERSIONED': {
        const list = lifecycle.datasetVersions.get(event.datasetId) ?? [];
        const previous = list.at(-1);
        if (event.datasetVersion !== (previous?.event.datasetVersion ?? 0) + 1)
          lifecycle.problems.push(`entry ${index} (DATASET_VERSIONED) is version ${event.datasetVersion} of dataset ${event.datasetId}, want ${(previous?.event.datasetVersion ?? 0) + 1}`);
        list.push({ index, event });
        lifecycle.datasetVersions.set(event.datasetId, list);
        break;
      }
      case 'FORGET_EXTENDED':
        if (!lifecycle.extensions.has(event.requestId)) lifecycle.extensions.set(event.requestId, { index, event });
        break;
      default:
        break;
    }
  }
  return lifecycle;
}

/** A forget request's timing with its extension notice, when one was filed. */
export type ExtendedTiming<T> = T & { extension: { index: number; reason: string; newDeadline: string } | null };

/**
 * The timings with each request's extension: an extended request is late only once its chain-attested end (the
 * anchor of its last UNLEARN_COMPLETED, or now while it is pending) passes the new deadline; others keep theirs.
 */
export function applyExtensions<T extends { requestId: string; late: boolean; requestAnchor: unknown; unlearnAnchor: { timestamp: number } | null }>(
  timings: T[],
  extensions: Lifecycle['extensions'],
  nowSeconds: number,
): ExtendedTiming<T>[] {
  return timings.map((t) => {
    const found = extensions.get(t.requestId);
    if (!found) return { ...t, extension: null };
    const deadline = Date.parse(found.event.newDeadline) / 1000;
    const end = t.unlearnAnchor?.timestamp ?? nowSeconds;
    return { ...t, late: t.requestAnchor !== null && end > deadline, extension: { index: found.index, reason: found.event.reason, newDeadline: found.event.newDeadline } };
  });
}
