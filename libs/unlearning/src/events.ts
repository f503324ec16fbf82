/**
 * Ledger event payloads the engine reports. Every field is a string, a finite number, lowercase hex,
 * null, or an array/object of those: JSON-safe, ready for RFC 8785.
 */
export type Hex = string;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface BatchLearnedEvent {
  type: 'BATCH_LEARNED';
  version: 1;
  modelId: string;
  modelVersion: number;
  shard: number;
  slice: number;
  /** RFC 9162 root of the slice's ordered commitments (its new samples). */
  batchRoot: Hex;
  count: number;
  /** Checkpoint trained from; null for slice 0, which starts from seeded initial weights. */
  parentCheckpoint: Hex | null;
  checkpoint: Hex;
  hyperparamsHash: Hex;
}

export interface CheckpointSavedEvent {
  type: 'CHECKPOINT_SAVED';
  version: 1;
  modelId: string;
  shard: number;
  slice: number;
  checkpoint: Hex;
  bytes: number;
  weightsSha256: Hex;
}

export interface ModelPublishedEvent {
  type: 'MODEL_PUBLISHED';
  version: 1;
  modelId: string;
  modelVersion: number;
  onnxSha256: Hex;
  manifestHash: Hex;
  metrics: { [key: string]: JsonValue };
}

export interface AffectedShard {
  shard: number;
  fromSlice: number;
}

export interface UnlearnCompletedEvent {
  type: 'UNLEARN_COMPLETED';
  version: 1;
  modelId: string;
  requestIds: string[];
  affected: AffectedShard[];
  oldOnnxSha256: Hex;
  newOnnxSha256: Hex;
  modelVersion: number;
  evidence: { [key: string]: JsonValue };
}

export type EngineEvent = BatchLearnedEvent | CheckpointSavedEvent | ModelPublishedEvent | UnlearnCompletedEvent;

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
