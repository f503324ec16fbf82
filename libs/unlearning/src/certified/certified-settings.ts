import { randomBytes } from 'node:crypto';
import { UnlearningError } from '../errors';

/** What a certified model asks for (POST /v1/models `certified`): an (epsilon, delta) certificate at L2 strength lambda. */
export interface CertifiedRequest {
  epsilon: number;
  delta: number;
  /** Per-sample L2 regularisation (the sum-form objective's coefficient is lambda * n). */
  lambda: number;
  /** Standard deviation of the objective perturbation B (default 1). */
  sigma?: number;
}

/**
 * The request resolved at creation (part of the training config, so of the hyperparameter hash): sigma filled in
 * and the 256-bit secret the objective perturbation B ~ N(0, sigma^2 I) is drawn from. Whoever knows B and the
 * remaining data could tell a Newton step from a retraining, so it is drawn by the service, never chosen by a
 * user, and shown only to `ml` and `auditor` keys (a replay needs it), as the DP-SGD noise seed is.
 */
export type CertifiedSettings = {
  epsilon: number;
  delta: number;
  lambda: number;
  sigma: number;
  /** 64 lowercase hex digits drawn at creation. */
  noiseSeed: string;
};

/** The default standard deviation of B: at lambda = 1e-4 it costs the `mnist` package's digits about half a point (bench). */
export const DEFAULT_CERTIFIED_SIGMA = 1;
/** The largest lambda taken (far past any useful regularisation). */
export const MAX_CERTIFIED_LAMBDA = 1e3;

const fail = (message: string): never => {
  throw new UnlearningError('INVALID_CONFIG', message);
};

function checkPositive(name: string, value: unknown, max = Infinity): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max)
    fail(`certified.${name} must be a finite number > 0${max < Infinity ? ` and at most ${max}` : ''}, got ${String(value)}`);
}

/**
 * Checks a request; `trainingSamples` is n, the samples the model trains on: delta must be below 1/n (a delta of
 * 1/n or more allows giving one sample away outright).
 */
export function checkCertifiedRequest(request: CertifiedRequest, trainingSamples: number): void {
  if (request === null || typeof request !== 'object') fail('certified must be an object {epsilon, delta, lambda}');
  checkPositive('epsilon', request.epsilon);
  checkPositive('delta', request.delta);
  if (request.delta >= 1 / trainingSamples)
    fail(`certified.delta must be below 1/n = 1/${trainingSamples} (n: the training samples), got ${request.delta}`);
  checkPositive('lambda', request.lambda, MAX_CERTIFIED_LAMBDA);
  if (request.sigma !== undefined) checkPositive('sigma', request.sigma);
}

/** The request resolved: sigma's default and a fresh noise seed (or the one given, for tests and replays). */
export function resolveCertified(request: CertifiedRequest, trainingSamples: number, noiseSeed: string = randomBytes(32).toString('hex')): CertifiedSettings {
  checkCertifiedRequest(request, trainingSamples);
  return checkCertifiedSettings({
    epsilon: request.epsilon,
    delta: request.delta,
    lambda: request.lambda,
    sigma: request.sigma ?? DEFAULT_CERTIFIED_SIGMA,
    noiseSeed,
  });
}

/** Checks resolved settings (from a stored config or a manifest); throws INVALID_CONFIG naming the field. */
export function checkCertifiedSettings(settings: CertifiedSettings): CertifiedSettings {
  if (settings === null || typeof settings !== 'object') fail('certified must be an object');
  checkPositive('epsilon', settings.epsilon);
  checkPositive('delta', settings.delta);
  if (settings.delta >= 1) fail(`certified.delta must be below 1, got ${settings.delta}`);
  checkPositive('lambda', settings.lambda, MAX_CERTIFIED_LAMBDA);
  checkPositive('sigma', settings.sigma);
  if (typeof settings.noiseSeed !== 'string' || !/^[0-9a-f]{64}$/.test(settings.noiseSeed)) fail('certified.noiseSeed must be 64 lowercase hex digits');
  const { epsilon, delta, lambda, sigma, noiseSeed } = settings;
  return { epsilon, delta, lambda, sigma, noiseSeed };
}

/**
 * The gradient-residual budget sigma * epsilon / c with c = sqrt(2 ln(1.5 / delta)) (Guo et al. 2020, Theorem 3):
 * while the accumulated residual bound stays within it, the model is (epsilon, delta)-certified.
 */
export function residualBudget(settings: Pick<CertifiedSettings, 'epsilon' | 'delta' | 'sigma'>): number {
  const c = Math.sqrt(2 * Math.log(1.5 / settings.delta));
  return (settings.sigma * settings.epsilon) / c;
}
