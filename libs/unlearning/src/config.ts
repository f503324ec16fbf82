import canonicalize from 'canonicalize';
import { UnlearningError } from './errors';
import { sha256Hex } from './hash';
import { LayerSizes } from './architecture';
import { checkPrivacySettings, PrivacySettings } from './privacy/privacy-config';
import { CertifiedSettings, checkCertifiedSettings } from './certified/certified-settings';
import { checkMaskedFeatures } from './feature-mask';

export type MethodName = 'full-retrain' | 'sisa' | 'certified';
export const METHOD_NAMES: readonly MethodName[] = ['full-retrain', 'sisa', 'certified'];
export type ModelKind = 'logistic-regression' | 'mlp';
export type Aggregation = 'mean' | 'vote';

/** Everything that fixes a model's bytes besides its samples. */
export interface TrainingConfig {
  /**
   * 'certified' (certified removal, certified/): one-vs-rest logistic regression trained by L-BFGS, not SGD, so
   * shards, slices, epochs, batchSize and learningRate are fixed at 1 and unused; `certified` holds its settings.
   */
  method: MethodName;
  model: ModelKind;
  /** Hidden layer widths of an MLP (ReLU); must be empty for logistic regression. */
  hiddenLayers: number[];
  numFeatures: number;
  numClasses: number;
  /** S and R of SISA; both 1 for full retrain. */
  shards: number;
  slices: number;
  /**
   * e: the training budget in epochs over the whole data. A full retrain trains its one slice e epochs; SISA
   * spreads it over the slices as `epochsPerSlice` says.
   */
  epochs: number;
  /**
   * Epochs slice r trains (on slices 0..r), one entry per slice, as normalizeConfig resolved them: SISA's
   * schedule by default (see sisaEpochSchedule), the same number for every slice when one was given. Absent
   * in configs stored before the field existed: every slice then trains `epochs` epochs (see epochsOfSlices).
   */
  epochsPerSlice?: number[];
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
  /**
   * DP-SGD (absent: plain SGD): per-example clipping, Poisson sampling at privacy.sampleRate per shard, Gaussian
   * noise of privacy.noiseMultiplier, as resolvePrivacy resolved them at creation.
   */
  privacy?: PrivacySettings;
  /** Certified removal's settings (method 'certified' only; absent otherwise, so other configs keep their hash). */
  certified?: CertifiedSettings;
  /**
   * Columns the model never reads (feature-level unlearning, feature-mask.ts): zeroed in training and replaced
   * by 0 in the published graph. Sorted; absent when none, so other configs keep their hash.
   */
  maskedFeatures?: number[];
}

export type TrainingConfigInput = Omit<
  TrainingConfig,
  'hiddenLayers' | 'shards' | 'slices' | 'aggregation' | 'seed' | 'threads' | 'weightDecay' | 'epochsPerSlice' | 'privacy' | 'certified' | 'epochs' | 'batchSize' | 'learningRate' | 'maskedFeatures'
> & {
  /** Feature-level unlearning: columns the model must not read (SISA and full retraining). */
  maskedFeatures?: number[];
  privacy?: PrivacySettings;
  /** Required but for method 'certified' (which trains by L-BFGS). */
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Method 'certified' only, resolved (resolveCertified). */
  certified?: CertifiedSettings;
  /**
   * SISA only: epochs of every slice (a number), or each slice's (an array of R, as a resolved config holds
   * them). Absent: SISA's schedule, 2e/(R+1) per slice on average.
   */
  epochsPerSlice?: number | number[];
  threads?: number;
  weightDecay?: number;
  hiddenLayers?: number[];
  shards?: number;
  slices?: number;
  aggregation?: Aggregation;
  seed: string | number;
};

const MAX_UNITS = 1 << 16;
const MAX_EPOCHS = 10000;

/** Fills defaults and checks every field; throws INVALID_CONFIG naming the field. */
export function normalizeConfig(input: TrainingConfigInput): TrainingConfig {
  const fail = (message: string): never => {
    throw new UnlearningError('INVALID_CONFIG', message);
  };
  if (input === null || typeof input !== 'object') fail('config must be an object');
  if (!METHOD_NAMES.includes(input.method)) fail(`method must be one of ${METHOD_NAMES.map((m) => `'${m}'`).join(', ')}, got ${String(input.method)}`);
  if (input.method === 'certified') return normalizeCertifiedConfig(input);
  if (input.certified !== undefined) fail(`certified settings are for method 'certified', not '${input.method}'`);
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
  checkInteger('epochs', input.epochs, 1, MAX_EPOCHS);
  const epochsPerSlice = resolveEpochsPerSlice(input, slices);
  checkInteger('batchSize', input.batchSize, 1, 1 << 16);
  const learningRate = input.learningRate as number;
  if (typeof learningRate !== 'number' || !Number.isFinite(learningRate) || learningRate <= 0 || learningRate > 100) {
    fail(`learningRate must be a finite number in (0, 100], got ${String(input.learningRate)}`);
  }
  if ((typeof input.seed !== 'string' && typeof input.seed !== 'number') || (typeof input.seed === 'number' && !Number.isSafeInteger(input.seed)) || String(input.seed).length === 0) {
    fail('seed must be a non-empty string or a safe integer');
  }
  const weightDecay = input.weightDecay ?? 0;
  if (typeof weightDecay !== 'number' || !Number.isFinite(weightDecay) || weightDecay < 0 || learningRate * weightDecay >= 1) {
    fail(`weightDecay must be a finite number >= 0 with learningRate * weightDecay < 1, got ${String(input.weightDecay)}`);
  }
  const threads = input.threads ?? 1;
  checkInteger('threads', threads, 1, 64);
  const aggregation = input.aggregation ?? 'mean';
  if (aggregation !== 'mean' && aggregation !== 'vote') fail(`aggregation must be 'mean' or 'vote', got ${String(aggregation)}`);
  const config: TrainingConfig = {
    method: input.method,
    model: input.model,
    hiddenLayers: [...hiddenLayers],
    numFeatures: input.numFeatures,
    numClasses: input.numClasses,
    shards,
    slices,
    epochs: input.epochs as number,
    epochsPerSlice,
    batchSize: input.batchSize as number,
    learningRate,
    weightDecay,
    seed: String(input.seed),
    aggregation,
    threads,
  };
  // Only a DP config has the key, so every other config keeps its canonical form and hash.
  if (input.privacy !== undefined) config.privacy = checkPrivacySettings(input.privacy);
  if (input.maskedFeatures !== undefined) config.maskedFeatures = checkMaskedFeatures(input.maskedFeatures, input.numFeatures);
  return config;
}

/**
 * A certified removal config: logistic regression only (the removal bound needs a convex loss with a Lipschitz
 * second derivative), one model, no SGD settings; every unused field fixed at 1 so the config hashes one way.
 */
function normalizeCertifiedConfig(input: TrainingConfigInput): TrainingConfig {
  const fail = (message: string): never => {
    throw new UnlearningError('INVALID_CONFIG', message);
  };
  if (input.model !== 'logistic-regression') fail(`certified removal needs model 'logistic-regression' (a convex loss), got ${String(input.model)}`);
  if (input.hiddenLayers !== undefined && input.hiddenLayers.length > 0) fail('logistic-regression takes no hiddenLayers');
  if (input.maskedFeatures !== undefined) fail('maskedFeatures (feature-level unlearning) is for sisa and full-retrain models, not certified removal');
  if (input.certified === undefined) fail("method 'certified' needs certified settings {epsilon, delta, lambda, sigma, noiseSeed}");
  if (input.privacy !== undefined) fail('privacy (DP-SGD) does not apply to certified removal, which is trained by L-BFGS');
  for (const name of ['shards', 'slices', 'epochs', 'batchSize', 'learningRate', 'threads'] as const) {
    const value = input[name];
    if (value !== undefined && value !== 1)
      fail(`${name} does not apply to certified removal (trained by L-BFGS to a gradient norm of 1e-6 per sample), got ${String(value)}`);
  }
  if (input.epochsPerSlice !== undefined && !(input.epochsPerSlice === 1 || (Array.isArray(input.epochsPerSlice) && input.epochsPerSlice.length === 1 && input.epochsPerSlice[0] === 1)))
    fail('epochsPerSlice does not apply to certified removal');
  if (input.weightDecay !== undefined && input.weightDecay !== 0) fail('weightDecay does not apply to certified removal: its L2 strength is certified.lambda');
  if (input.aggregation !== undefined && input.aggregation !== 'mean') fail('aggregation does not apply to certified removal (one model)');
  checkInteger('numFeatures', input.numFeatures, 1, 1 << 20);
  checkInteger('numClasses', input.numClasses, 2, MAX_UNITS);
  if ((typeof input.seed !== 'string' && typeof input.seed !== 'number') || (typeof input.seed === 'number' && !Number.isSafeInteger(input.seed)) || String(input.seed).length === 0) {
    fail('seed must be a non-empty string or a safe integer');
  }
  return {
    method: 'certified',
    model: 'logistic-regression',
    hiddenLayers: [],
    numFeatures: input.numFeatures,
    numClasses: input.numClasses,
    shards: 1,
    slices: 1,
    epochs: 1,
    epochsPerSlice: [1],
    batchSize: 1,
    learningRate: 1,
    weightDecay: 0,
    seed: String(input.seed),
    aggregation: 'mean',
    threads: 1,
    certified: checkCertifiedSettings(input.certified as CertifiedSettings),
  };
}

/**
 * SISA's epochs per slice (Bourtoule et al. 2021, §V; their reference code, cleverhans-lab/machine-unlearning
 * sisa.py): with a = 2e/(R+1), slice i trains floor((i+1)a) - floor(i*a) epochs, so the R slices, each training
 * on a growing prefix of the shard, cost about what e epochs over the shard cost. Two departures, both stated:
 * the floors are computed on integers (2e(i+1) div (R+1)), where the reference's floating point can land just
 * below an integer; and every slice trains at least 1 epoch, where the reference trains a slice whose share
 * rounds to 0 not at all. With 2e < R+1 (e=1, R=5: a=1/3) pure rounding gives [0, 0, 1, 0, 0]: slice 4's
 * samples would be learned by no epoch, and each 0-epoch slice would still get a BATCH_LEARNED entry and a
 * checkpoint for a batch its weights never saw. With the minimum of 1 that case costs more than e epochs over
 * the shard ([1, 1, 1, 1, 1] at e=1, R=5: 3x); from 2e >= R+1 on every share is at least 1 and the minimum
 * changes nothing.
 */
export function sisaEpochSchedule(epochs: number, slices: number): number[] {
  const through = (i: number) => Math.floor((2 * epochs * i) / (slices + 1)); // exact: small integers
  return Array.from({ length: slices }, (_, i) => Math.max(1, through(i + 1) - through(i)));
}

/**
 * The epochs each slice trains: the resolved schedule, or `epochs` everywhere for a config stored before it
 * existed. With `count` > R (a model with appended slices, one per learn batch), each appended slice trains
 * as many epochs as the last of the R slices does (the schedule's last entry, continued), over its own samples
 * only (see trainShard).
 */
export function epochsOfSlices(config: TrainingConfig, count = config.slices): number[] {
  const schedule = config.epochsPerSlice ? [...config.epochsPerSlice] : new Array<number>(config.slices).fill(config.epochs);
  const last = schedule[schedule.length - 1];
  while (schedule.length < count) schedule.push(last);
  return schedule;
}

/**
 * A config input as a service stored it. One stored before epochsPerSlice existed trained every slice `epochs`
 * epochs; this says so explicitly, so that normalizeConfig does not give it SISA's schedule. New configs are
 * stored with their schedule resolved, and pass unchanged.
 */
export function resolveStoredSchedule(stored: TrainingConfigInput): TrainingConfigInput {
  return stored.epochsPerSlice === undefined ? { ...stored, epochsPerSlice: stored.epochs } : stored;
}

function resolveEpochsPerSlice(input: TrainingConfigInput, slices: number): number[] {
  const given = input.epochsPerSlice;
  let schedule: number[];
  if (given === undefined) schedule = sisaEpochSchedule(input.epochs as number, slices);
  else if (Array.isArray(given)) {
    if (given.length !== slices)
      throw new UnlearningError('INVALID_CONFIG', `epochsPerSlice must have one entry per slice (${slices}), got ${given.length}`);
    given.forEach((e, i) => checkInteger(`epochsPerSlice[${i}]`, e, 1, MAX_EPOCHS));
    schedule = [...given];
  } else {
    checkInteger('epochsPerSlice', given, 1, MAX_EPOCHS);
    schedule = new Array<number>(slices).fill(given);
  }
  // A full retrain has one slice, which trains `epochs` epochs (SISA's schedule gives the same for R = 1).
  if (input.method === 'full-retrain' && schedule[0] !== input.epochs)
    throw new UnlearningError('INVALID_CONFIG', `epochsPerSlice is for sisa: full-retrain trains its one slice for epochs (${input.epochs}), got ${String(given)}`);
  return schedule;
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new UnlearningError('INVALID_CONFIG', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

export function layerSizesOf(config: TrainingConfig): LayerSizes {
  return [config.numFeatures, ...config.hiddenLayers, config.numClasses];
}

/**
 * The config as RFC 8785 canonical JSON, the form the hyperparameter hash covers. `epochsPerSlice` is left out
 * when every slice trains `epochs` epochs: that is what configs stored before the field trained, so they keep
 * their hash, and one schedule has one hash whichever way it was written.
 */
export function canonicalConfig(config: TrainingConfig): string {
  const { epochsPerSlice, ...rest } = config;
  const uniform = !epochsPerSlice || epochsPerSlice.every((e) => e === config.epochs);
  return canonicalize(uniform ? rest : config) as string;
}

/** SHA-256 of the canonical config: the hyperparameter hash of BATCH_LEARNED and of checkpoint addresses. */
export function hashHyperparameters(config: TrainingConfig): string {
  return sha256Hex('lethe-hyperparameters|v1|', canonicalConfig(config));
}
