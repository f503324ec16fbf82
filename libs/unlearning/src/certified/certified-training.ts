// Training a certified-removal model (Guo et al. 2020): the one-vs-rest L2-regularised logistic loss plus the
// random linear term <B, W> (B ~ N(0, sigma^2 I) from the model's noise seed), minimised from zero by L-BFGS to a
// gradient norm of at most 1e-6 per sample, then (for removals) the Hessians' Cholesky factors at the minimiser.
import { UnlearningError } from '../errors';
import { SeededRandom } from '../random';
import { CertifiedSettings } from './certified-settings';
import { minimizeLbfgs } from './lbfgs';
import { LabeledExample } from '../samples';
import { buildOvrData, OvrData } from './ovr-data';
import { computeHessians, computeMargins, evaluateObjective, Objective } from './ovr-objective';
import { choleskyPacked, choleskySolvePacked, invertFactoredPacked, norm2 } from './packed';
import { Yielder } from './yield';

/** Training stops once ||gradient of L|| / n is at most this (the mean-form objective of the reference code). */
export const GRADIENT_TOLERANCE = 1e-6;
const MAX_LBFGS_ITERATIONS = 5000;
const MAX_NEWTON_ITERATIONS = 20;

/** B (d x K, row-major): sigma times standard normals drawn in order from SeededRandom(`certified-noise|<noiseSeed>`). */
export function drawObjectiveNoise(settings: Pick<CertifiedSettings, 'sigma' | 'noiseSeed'>, d: number, k: number): Float64Array {
  const random = new SeededRandom(`certified-noise|${settings.noiseSeed}`);
  const noise = new Float64Array(d * k);
  for (let i = 0; i < noise.length; i++) noise[i] = settings.sigma * random.nextGaussian();
  return noise;
}

/** The gradient-norm tolerance of a training on n samples, in the sum form the removal bound is in: 1e-6 n. */
export function trainingTolerance(n: number): number {
  return GRADIENT_TOLERANCE * n;
}

export interface CertifiedFit {
  /** The minimiser (d x K, row-major). */
  w: Float64Array;
  /** ||gradient|| at w (sum form), at most trainingTolerance(n). */
  gradientNorm: number;
  iterations: number;
}

/**
 * Minimises L(W; D) + <B, W> from W = 0. L-BFGS does nearly all of it; should it stall above the tolerance (its
 * line search finds no decrease at double precision), Newton steps with exact Hessians finish the job.
 * `onProgress` gets the fraction of the way from the first gradient norm to the tolerance, on a log scale.
 */
export async function fitCertified(objective: Objective, onProgress?: (fraction: number) => void): Promise<CertifiedFit> {
  const { data } = objective;
  const size = data.d * data.k;
  const tolerance = trainingTolerance(data.n);
  const margins = new Float64Array(data.n * data.k);
  const f = (x: Float64Array, gradient: Float64Array) => evaluateObjective(objective, x, gradient, margins);
  let first: number | undefined;
  const progress = (gradientNorm: number) => {
    first ??= gradientNorm;
    if (onProgress && first > tolerance) onProgress(Math.min(1, Math.max(0, Math.log(first / gradientNorm) / Math.log(first / tolerance))));
  };
  const fit = await minimizeLbfgs(f, new Float64Array(size), {
    gradientTolerance: tolerance,
    maxIterations: MAX_LBFGS_ITERATIONS,
    onIteration: (_, gradientNorm) => progress(gradientNorm),
  });
  let { x: w, gradientNorm } = fit;
  let iterations = fit.iterations;
  const gradient = new Float64Array(size);
  for (let newton = 0; gradientNorm > tolerance && newton < MAX_NEWTON_ITERATIONS; newton++) {
    f(w, gradient);
    const factors = await factorHessians(data, objective.lambda, w);
    const next = w.slice();
    for (let c = 0; c < data.k; c++) {
      const g = new Float64Array(data.d);
      for (let j = 0; j < data.d; j++) g[j] = gradient[j * data.k + c];
      choleskySolvePacked(factors[c], data.d, g);
      for (let j = 0; j < data.d; j++) next[j * data.k + c] -= g[j];
    }
    w = next;
    gradientNorm = norm2((f(w, gradient), gradient));
    iterations++;
    progress(gradientNorm);
  }
  if (gradientNorm > tolerance)
    throw new UnlearningError('RUNTIME_ERROR', `certified training did not reach a gradient norm of ${GRADIENT_TOLERANCE} per sample (got ${gradientNorm / data.n})`);
  return { w, gradientNorm, iterations };
}

/** Per class, the Cholesky factor (packed) of the Hessian of L(.; D) at w. */
export async function factorHessians(data: OvrData, lambda: number, w: Float64Array): Promise<Float64Array[]> {
  const yielder = new Yielder();
  const hessians = await computeHessians(data, lambda, w, yielder);
  const factors: Float64Array[] = [];
  for (const hessian of hessians) factors.push(await choleskyPacked(hessian, data.d, yielder));
  return factors;
}

/** What a removal solves with, per class: the Hessian of L(.; D) at w (packed) and its inverse (dense). */
export interface RemovalOperator {
  hessian: Float64Array;
  inverse: Float64Array;
}

/** The removal operators of a version: its Hessians at its weights on its samples, and their inverses. */
export async function prepareRemovalOperators(data: OvrData, lambda: number, w: Float64Array): Promise<RemovalOperator[]> {
  const yielder = new Yielder();
  const hessians = await computeHessians(data, lambda, w, yielder);
  const operators: RemovalOperator[] = [];
  for (const hessian of hessians) {
    const factor = await choleskyPacked(hessian, data.d, yielder);
    operators.push({ hessian, inverse: await invertFactoredPacked(factor, data.d, yielder) });
  }
  return operators;
}

/**
 * The non-certified baseline on the same rows: the L2-regularised one-vs-rest objective without the perturbation,
 * minimised the same way (what certified removal's accuracy is compared with). Weights d x K, row-major.
 */
export async function fitOneVsRest(rows: readonly LabeledExample[], numFeatures: number, numClasses: number, lambda: number): Promise<Float64Array> {
  return (await fitCertified({ data: buildOvrData(rows, numFeatures, numClasses), lambda, noise: null })).w;
}

/** The class each row gets from one-vs-rest weights (the largest margin; the lowest class on ties), rows projected as in training. */
export function predictOneVsRest(w: Float64Array, rows: readonly LabeledExample[], numFeatures: number, numClasses: number): number[] {
  const data = buildOvrData(rows, numFeatures, numClasses);
  const margins = new Float64Array(data.n * numClasses);
  computeMargins(data, w, margins);
  return rows.map((_, i) => {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (margins[i * numClasses + c] > margins[i * numClasses + best]) best = c;
    return best;
  });
}
