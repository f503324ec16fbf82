// The ledger event payloads the engine reports are the ledger's own types (@lethe/events, whose
// validateEvent checks them when they are appended); a type-only import, so the engine loads nothing of it.
// The engine always fills the fields the ledger leaves optional.
import type { BatchLearned, CheckpointSaved, EvidenceRecorded, JsonValue, ModelPublished, UnlearnCompleted } from '@lethe/events';

export type { JsonValue };
export type Hex = string;

export type BatchLearnedEvent = BatchLearned;
export type CheckpointSavedEvent = CheckpointSaved & Required<Pick<CheckpointSaved, 'bytes' | 'weightsSha256'>>;
export type ModelPublishedEvent = ModelPublished & Required<Pick<ModelPublished, 'runtime'>>;

export interface AffectedShard {
  shard: number;
  fromSlice: number;
}

export type UnlearnCompletedEvent = UnlearnCompleted & { affected: AffectedShard[] };

export type EvidenceRecordedEvent = EvidenceRecorded;

export type EngineEvent = BatchLearnedEvent | CheckpointSavedEvent | ModelPublishedEvent | UnlearnCompletedEvent | EvidenceRecordedEvent;

/** Where the engine reports what it did; the service appends these to the Merkle log. */
export interface LedgerSink {
  append(events: EngineEvent[]): Promise<unknown>;
}

/** Collects events in memory; for tests and offline runs. */
export class MemoryLedgerSink implements LedgerSink {
  readonly events: EngineEvent[] = [];

  async append(events: EngineEvent[]): Promise<void> {
    this.events.push(...events.map((e) => JSON.parse(JSON.stringify(e)) as EngineEvent));
  }
}
