import { randomBytes } from 'node:crypto';
import type { PrivacyGuarantee as LedgerPrivacyGuarantee } from '@lethe/events';
import { UnlearningError } from '../errors';
import { LruMap } from '../lru';
import { accountEpsilon, PRIVACY_ACCOUNTANTS, PrivacyAccountant } from './accountant';
import { solveNoiseMultiplier } from './noise-multiplier';
import { isRepresentableRate, representableRate } from './poisson-sampling';

/** What a model asks for: (ε, δ)-DP with per-example gradients clipped to `clipNorm`. */
export interface PrivacyRequest {
  epsilon: number;
  delta: number;
  clipNorm: number;
  /** Default 'rdp'. */
  accountant?: PrivacyAccountant;
}

/**
 * The request resolved at creation (part of the training config, so of the hyperparameter hash): the Poisson
 * sampling rate per shard, the steps of one epoch, the noise multiplier solved for the target ε, and the
 * 256-bit secret the sampling and the noise are drawn from.
 */
export type PrivacySettings = {
  epsilon: number;
  delta: number;
  clipNorm: number;
  accountant: PrivacyAccountant;
  /** q = k / 2^53: each sample of a shard joins each step with probability q. */
  sampleRate: number;
  /** Steps of one epoch (1/q rounded up); slice r runs epochsPerSlice[r] times this many steps. */
  stepsPerEpoch: number;
  noiseMultiplier: number;
  /** 64 hex digits drawn at creation; the Poisson sampling and the noise come from it (see README: threat model). */
  noiseSeed: string;
};

/** MODEL_PUBLISHED.privacy (the ledger's type): the guarantee every sample of the version has; `steps` are those a sample of slice 0 may join, the most any sample may. */
export type PrivacyGuarantee = LedgerPrivacyGuarantee & { accountant: PrivacyAccountant };

const fail = (message: string): never => {
  throw new UnlearningError('INVALID_CONFIG', message);
};

/** Checks what a request asks for; `trainingSamples` is n, the training set's size (δ must be below 1/n). */
export function checkPrivacyRequest(request: PrivacyRequest, trainingSamples: number): void {
  if (request === null || typeof request !== 'object') fail('privacy must be an object {epsilon, delta, clipNorm}');
  const { epsilon, delta, clipNorm } = request;
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) fail(`privacy.epsilon must be a finite number > 0, got ${String(epsilon)}`);
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta <= 0) fail(`privacy.delta must be a number > 0, got ${String(delta)}`);
  if (delta >= 1 / trainingSamples) fail(`privacy.delta must be below 1/n = 1/${trainingSamples} (n: the training samples), got ${delta}`);
  if (typeof clipNorm !== 'number' || !Number.isFinite(clipNorm) || clipNorm <= 0) fail(`privacy.clipNorm must be a finite number > 0, got ${String(clipNorm)}`);
  const accountant = request.accountant ?? 'rdp';
  if (!(PRIVACY_ACCOUNTANTS as readonly string[]).includes(accountant)) fail(`privacy.accountant must be one of ${PRIVACY_ACCOUNTANTS.join(', ')}, got ${String(accountant)}`);
}

/**
 * Resolves a request for a model of `shards` shards over n = `trainingSamples` samples with an expected batch
 * of `batchSize`: stepsPerEpoch = ceil(n / (shards * batchSize)), q = 1/stepsPerEpoch rounded up to k / 2^53
 * (so each shard's expected batch is about batchSize), and σ the smallest noise multiplier whose ε after every
 * step a sample may join (stepsPerEpoch * the sum of epochsPerSlice) is within the target.
 */
export function resolvePrivacy(
  request: PrivacyRequest,
  shape: { trainingSamples: number; shards: number; batchSize: number; epochsPerSlice: readonly number[] },
  noiseSeed: string = randomBytes(32).toString('hex'),
): PrivacySettings {
  checkPrivacyRequest(request, shape.trainingSamples);
  const accountant = request.accountant ?? 'rdp';
  const stepsPerEpoch = Math.max(1, Math.ceil(shape.trainingSamples / (shape.shards * shape.batchSize)));
  const sampleRate = representableRate(1 / stepsPerEpoch);
  const steps = stepsPerEpoch * shape.epochsPerSlice.reduce((a, b) => a + b, 0);
  const { noiseMultiplier } = solveNoiseMultiplier({ epsilon: request.epsilon, delta: request.delta, sampleRate, steps, accountant });
  return { epsilon: request.epsilon, delta: request.delta, clipNorm: request.clipNorm, accountant, sampleRate, stepsPerEpoch, noiseMultiplier, noiseSeed };
}

/** Checks resolved settings (from a stored config or a manifest); throws INVALID_CONFIG naming the field. */
export function checkPrivacySettings(settings: PrivacySettings): PrivacySettings {
  if (settings === null || typeof settings !== 'object') fail('privacy must be an object');
  const positive = (name: keyof PrivacySettings) => {
    const v = settings[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`privacy.${name} must be a finite number > 0, got ${String(v)}`);
  };
  (['epsilon', 'delta', 'clipNorm', 'noiseMultiplier'] as const).forEach(positive);
  if (settings.delta >= 1) fail(`privacy.delta must be below 1, got ${settings.delta}`);
  if (!isRepresentableRate(settings.sampleRate)) fail(`privacy.sampleRate must be k / 2^53 in (0, 1], got ${String(settings.sampleRate)}`);
  if (!Number.isSafeInteger(settings.stepsPerEpoch) || settings.stepsPerEpoch < 1 || settings.stepsPerEpoch > 1 << 24)
    fail(`privacy.stepsPerEpoch must be an integer in [1, 2^24], got ${String(settings.stepsPerEpoch)}`);
  if (typeof settings.noiseSeed !== 'string' || !/^[0-9a-f]{64}$/.test(settings.noiseSeed)) fail('privacy.noiseSeed must be 64 lowercase hex digits');
  if (!(PRIVACY_ACCOUNTANTS as readonly string[]).includes(settings.accountant)) fail(`privacy.accountant must be one of ${PRIVACY_ACCOUNTANTS.join(', ')}`);
  const { epsilon, delta, clipNorm, accountant, sampleRate, stepsPerEpoch, noiseMultiplier, noiseSeed } = settings;
  return { epsilon, delta, clipNorm, accountant, sampleRate, stepsPerEpoch, noiseMultiplier, noiseSeed };
}

/** Steps every sample of slice 0 may join: each slice r runs stepsPerEpoch * epochsPerSlice[r] steps over slices 0..r. */
export function accountedSteps(settings: PrivacySettings, epochsPerSlice: readonly number[]): number {
  return settings.stepsPerEpoch * epochsPerSlice.reduce((a, b) => a + b, 0);
}

/** The guarantee of a model trained with these settings, ε recomputed by its accountant (memoized). */
export function privacyGuarantee(settings: PrivacySettings, epochsPerSlice: readonly number[]): PrivacyGuarantee {
  const steps = accountedSteps(settings, epochsPerSlice);
  const mechanism = { sampleRate: settings.sampleRate, noiseMultiplier: settings.noiseMultiplier, steps };
  const key = `${settings.accountant}|${settings.sampleRate}|${settings.noiseMultiplier}|${steps}|${settings.delta}`;
  let epsilon = spent.get(key);
  if (epsilon === undefined) {
    epsilon = accountEpsilon(settings.accountant, mechanism, settings.delta);
    spent.set(key, epsilon);
  }
  return { mechanism: 'dp-sgd', epsilon, delta: settings.delta, noiseMultiplier: settings.noiseMultiplier, sampleRate: settings.sampleRate, steps, clipNorm: settings.clipNorm, accountant: settings.accountant };
}

const spent = new LruMap<string, number>(64);
