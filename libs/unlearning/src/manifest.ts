import canonicalize from 'canonicalize';
import { TrainingConfig } from './config';
import { ShardRecord } from './model';
import { JsonValue } from './events';
import { sha256Hex } from './hash';
import { ONNX_IR_VERSION, ONNX_OPSET, ONNX_PRODUCER_NAME } from './onnx-graph';
import { TRAINING_RUNTIME, UNLEARNING_CODE_VERSION } from './version';

export const MANIFEST_FORMAT = 'lethe.model-manifest/v1';

/**
 * A version's manifest: the config (with its seed), the code version, and per shard the ordered
 * batch roots and checkpoints of its slices. Together with the committed samples it is enough to
 * replay training and compare the ONNX SHA-256.
 */
export function buildManifest(fields: {
  modelId: string;
  version: number;
  config: TrainingConfig;
  hyperparamsHash: string;
  shards: ShardRecord[];
  members: number[];
  onnxSha256: string;
  /** What a method adds (certified removal: its budget and removals); absent for SISA and full retraining. */
  extra?: { [key: string]: JsonValue };
}): { manifest: { [key: string]: JsonValue }; manifestHash: string } {
  const manifest: { [key: string]: JsonValue } = {
    format: MANIFEST_FORMAT,
    modelId: fields.modelId,
    modelVersion: fields.version,
    codeVersion: UNLEARNING_CODE_VERSION,
    runtime: TRAINING_RUNTIME,
    onnx: { opset: ONNX_OPSET, irVersion: ONNX_IR_VERSION, producer: ONNX_PRODUCER_NAME, sha256: fields.onnxSha256 },
    config: { ...fields.config, hiddenLayers: [...fields.config.hiddenLayers] },
    hyperparamsHash: fields.hyperparamsHash,
    assignment: 'shard = u32be(SHA-256("lethe-assign|" seed 0x00 externalId)[0:4]) mod S; slice = [4:8] mod R; rank = key',
    shards: fields.shards.map((s) => ({
      shard: s.shard,
      sampleCount: s.sampleCount,
      slices: s.slices.map((r) => ({ slice: r.slice, count: r.count, batchRoot: r.batchRoot, checkpoint: r.checkpoint, weightsSha256: r.weightsSha256 })),
    })),
    members: [...fields.members],
    ...fields.extra,
  };
  return { manifest, manifestHash: hashManifest(manifest) };
}

/** SHA-256 of the RFC 8785 canonical JSON of the manifest. */
export function hashManifest(manifest: { [key: string]: JsonValue }): string {
  return sha256Hex(canonicalize(manifest) as string);
}
