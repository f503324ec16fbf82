import { TrainingConfig } from './config';
import { Sample } from './samples';
import { JsonValue } from './events';

/** One trained slice of one shard: what it learned (batch root of its new samples) and the checkpoint after it. */
export interface SliceRecord {
  slice: number;
  count: number;
  batchRoot: string;
  checkpoint: string;
  /** SHA-256 of the checkpoint's bytes, checked whenever it is loaded again. */
  weightsSha256: string;
}

export interface ShardRecord {
  shard: number;
  sampleCount: number;
  slices: SliceRecord[];
}

/** A published model version and everything needed to unlearn from it. Never mutated: forgetting returns a new one. */
export interface TrainedModel {
  modelId: string;
  version: number;
  config: TrainingConfig;
  hyperparamsHash: string;
  /** The training samples this version learned (forgotten ones are gone). */
  samples: readonly Sample[];
  shards: ShardRecord[];
  /** Shards in the published ensemble: those holding at least one sample. */
  members: number[];
  onnx: Uint8Array;
  onnxSha256: string;
  manifest: { [key: string]: JsonValue };
  manifestHash: string;
  metrics: { [key: string]: JsonValue };
}
