import canonicalize from 'canonicalize';
import { UnlearningError } from './errors';
import { sha256Hex } from './hash';
import { LayerSizes } from './architecture';

export type MethodName = 'full-retrain' | 'sisa';
export type ModelKind = 'logistic-regression' | 'mlp';
export type Aggregation = 'mean' | 'vote';

/** Everything that fixes a model's bytes besides its samples. */
export interface TrainingConfig {
  method: MethodName;
  model: ModelKind;
  /** Hidden layer widths of an MLP (ReLU); must be empty for logistic regression. */
  hiddenLayers: number[];
  numFeatures: number;
  numClasses: number;
  /** S and R of SISA; both 1 for full retrain. */
  shards: number;
  slices: number;
  /** Epochs over slices 0..r when training slice r (SISA), or over all data (full retrain). */
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** L2 penalty on the weight matrices (not biases): w <- (1 - lr * weightDecay) w - lr * dW. Default 0. */
  weightDecay: number;
  /** Any string; fixes weight init, shard/slice assignment and training order. */
  seed: string;
  /** How the published ensemble combines shard models. */
  aggregation: Aggregation;
  /**
   * onnxruntime intra-op threads of the training step. Part of the config because MLAS splits a GEMM
   * differently per thread count, which changes float rounding: a replay must use the same number.
   */
  threads: number;
}

export type TrainingConfigInput = Omit<TrainingConfig, 'hiddenLayers' | 'shards' | 'slices' | 'aggregation' | 'seed' | 'threads' | 'weightDecay'> & {
  threads?: number;
  weightDecay?: number;
  hiddenLayers?: number[];
  shards?: number;
  slices?: number;
  aggregation?: Aggregation;
  seed: string | number;
};

const MAX_UNITS = 1 << 16;

/** Fills defaults and checks every field; throws INVALID_CONFIG naming the field. */
export function normalizeConfig(input: TrainingConfigInput): TrainingConfig {
  const fail = (message: string): never => {
    throw new UnlearningError('INVALID_CONFIG', message);
  };
  if (input === null || typeof input !== 'object') fail('config must be an object');
  if (input.method !== 'full-retrain' && input.method !== 'sisa') fail(`method must be 'full-retrain' or 'sisa', got ${String(input.method)}`);
  if (input.model !== 'logistic-regression' && input.model !== 'mlp') fail(`model must be 'logistic-regression' or 'mlp', got ${String(input.model)}`);
  const hiddenLayers = input.hiddenLayers ?? [];
  if (!Array.isArray(hiddenLayers)) fail('hiddenLayers must be an array');
  if (input.model === 'logistic-regression' && hiddenLayers.length > 0) fail('logistic-regression takes no hiddenLayers');
  if (input.model === 'mlp' && hiddenLayers.length === 0) fail('mlp needs at least one hidden layer');
  hiddenLayers.forEach((h, i) => checkInteger(`hiddenLayers[${i}]`, h, 1, MAX_UNITS));
  checkInteger('numFeatures', input.numFeatures, 1, 1 << 20);
  checkInteger('numClasses', input.numClasses, 2, MAX_UNITS);
  const shards = input.shards ?? 1;
  const slices = input.slices ?? 1;
  checkInteger('shards', shards, 1, 4096);
  checkInteger('slices', slices, 1, 4096);
  if (input.method === 'full-retrain' && (shards !== 1 || slices !== 1)) fail(`full-retrain trains one model: shards and slices must be 1, got ${shards} and ${slices}`);
  checkInteger('epochs', input.epochs, 1, 10000);
  checkInteger('batchSize', input.batchSize, 1, 1 << 16);
  if (typeof input.learningRate !== 'number' || !Number.isFinite(input.learningRate) || input.learningRate <= 0 || input.learningRate > 100) {
    fail(`learningRate must be a finite number in (0, 100], got ${String(input.learningRate)}`);
  }
  if ((typeof input.seed !== 'string' && typeof input.seed !== 'number') || (typeof input.seed === 'number' && !Number.isSafeInteger(input.seed)) || String(input.seed).length === 0) {
    fail('seed must be a non-empty string or a safe integer');
  }
  const weightDecay = input.weightDecay ?? 0;
  if (typeof weightDecay !== 'number' || !Number.isFinite(weightDecay) || weightDecay < 0 || input.learningRate * weightDecay >= 1) {
    fail(`weightDecay must be a finite number >= 0 with learningRate * weightDecay < 1, got ${String(input.weightDecay)}`);
  }
  const threads = input.threads ?? 1;
  checkInteger('threads', threads, 1, 64);
  const aggregation = input.aggregation ?? 'mean';
  if (aggregation !== 'mean' && aggregation !== 'vote') fail(`aggregation must be 'mean' or 'vote', got ${String(aggregation)}`);
  return {
    method: input.method,
    model: input.model,
    hiddenLayers: [...hiddenLayers],
    numFeatures: input.numFeatures,
    numClasses: input.numClasses,
    shards,
    slices,
    epochs: input.epochs,
    batchSize: input.batchSize,
    learningRate: input.learningRate,
    weightDecay,
    seed: String(input.seed),
    aggregation,
    threads,
  };
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UnlearningError('INVALID_CONFIG', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

export function layerSizesOf(config: TrainingConfig): LayerSizes {
  return [config.numFeatures, ...config.hiddenLayers, config.numClasses];
}

/** The config as RFC 8785 canonical JSON (the form the manifest records). */
export function canonicalConfig(config: TrainingConfig): string {
  return canonicalize(config) as string;
}

/** SHA-256 of the canonical config: the hyperparameter hash of BATCH_LEARNED and of checkpoint addresses. */
export function hashHyperparameters(config: TrainingConfig): string {
  return sha256Hex('lethe-hyperparameters|v1|', canonicalConfig(config));
}
