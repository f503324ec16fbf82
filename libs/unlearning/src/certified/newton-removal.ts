// Certified removal's Newton step (Guo, Goldstein, Hannun, van der Maaten, ICML 2020, Algorithm 1 and
// Corollary 2; their reference code facebookresearch/certified-removal, test_removal.py) for one-vs-rest
// logistic regression, and its data-dependent bound on the gradient residual.
//
// Removing the set F from D (D' = D \ F, n' samples) at weights w:
//   Delta_k = sum_{j in F} grad loss(w_k; x_j, y_jk) + lambda |F| w_k       (the gradient L(.; D') misses)
//   H'_k    = sum_{i in D'} D_ik x_i x_iᵀ + lambda n' I                       (the Hessian on the remaining data)
//   w⁻_k    = w_k + H'_k⁻¹ Delta_k
// and the gradient of L(.; D') at w⁻ (the residual) is bounded per class by
//   beta_k = gamma ||X'||_2 ||s_k|| ||X' s_k||,  s_k = H'_k⁻¹ Delta_k, gamma = 1/4 (the logistic loss),
// which needs ||x_i|| <= 1 (the data is projected onto the unit ball, ovr-data.ts). Two departures, both sound:
// - ||X'||_2 is bounded above by sqrt(||X'ᵀX'||_F), computed exactly from the Gram matrix; the reference code's
//   20 power iterations estimate it from below.
// - The K classes are one objective over the d x K weights (the noise B is d x K), so the residual's norm is
//   the Euclidean norm of the K per-class residuals: sqrt(sum_k beta_k^2) <= sum_k beta_k, where the reference
//   code adds the classes' bounds.
// The step is solved by conjugate gradients preconditioned with the inverse of the Hessian on all of D (H'_k
// differs from it by the removed rows and lambda |F| I, so it takes a few iterations past |F|), keeping H p by
// recursion (H z = r for the preconditioned residual z), so that an iteration costs one product with the
// inverse. The solve's residual is then computed afresh with the Hessian itself and added to the bound, and so is
// an a-priori bound on the rounding of the Hessian's accumulation over n samples and of that last product: with
// them the bound holds for the floating-point step, whatever the solver's own rounding. Nothing here reads the
// remaining data itself: ||X' s|| comes from the Gram matrix (s' G' s), so a removal costs O(K d^2), not O(n d K).
import { OvrData } from './ovr-data';
import { accumulateGram, accumulateLoss, computeCurvatures, computeGram } from './ovr-objective';
import { prepareRemovalOperators, RemovalOperator } from './certified-training';
import { allocateCertifiedState } from './certified-state';
import { dot, frobeniusNormSymmetricPacked, multiplyDense, multiplySymmetricPacked, norm2 } from './packed';
import { Yielder } from './yield';

/** The Lipschitz constant of the logistic loss's second derivative, as Guo et al. take it. */
export const LOGISTIC_GAMMA = 1 / 4;

export interface NewtonRemovalInput {
  /** n', the number of remaining samples. */
  keptCount: number;
  /** F, the samples removed. */
  removed: OvrData;
  /** Weights before the removal (d x K), at which `factors` were computed on D' ∪ F. */
  w: Float64Array;
  lambda: number;
  /** Per class, the Hessian of L(.; D' ∪ F) at w and its inverse (prepareRemovalOperators). */
  operators: readonly RemovalOperator[];
  /** Gram matrix of D' (packed): sum over the remaining samples of x xᵀ. */
  keptGram: Float64Array;
  /** Where w⁻ is written (d x K, not `w` itself): the new version's stored state (allocateCertifiedState); a new array when absent. */
  into?: Float64Array;
}

export interface NewtonRemoval {
  /** w⁻ (d x K). */
  w: Float64Array;
  /** The bound on ||gradient of L(.; D') at w⁻|| (over all classes), sum form. */
  residualBound: number;
  /** Its parts, each as the norm over classes: the Taylor remainder bounds, the solves' residuals with the factored operator, the rounding bounds. */
  taylorBound: number;
  solveResidual: number;
  roundingBound: number;
  /** The upper bound used for ||X'||_2. */
  spectralBound: number;
  /** Conjugate-gradient iterations, summed over classes. */
  iterations: number;
}

/** The solve stops once its residual is this small relative to Delta (what is left is added to the bound). */
const RELATIVE_TOLERANCE = 1e-10;
/** The unit roundoff of float64. */
const UNIT_ROUNDOFF = 2 ** -53;

export async function computeNewtonRemoval(input: NewtonRemovalInput, yielder = new Yielder()): Promise<NewtonRemoval> {
  const { keptCount, removed, w, lambda, operators, keptGram } = input;
  if (input.into === w) throw new RangeError('computeNewtonRemoval: `into` must not be `w`');
  const { d, k: K } = removed;
  const n = keptCount + removed.n;
  // Delta = gradient of the removed rows' loss at w, plus their share of the regulariser.
  const delta = new Float64Array(d * K);
  accumulateLoss(removed, w, delta, new Float64Array(removed.n * K));
  for (let j = 0; j < delta.length; j++) delta[j] += lambda * removed.n * w[j];
  const removedCurvature = new Float64Array(removed.n * K);
  computeCurvatures(removed, w, removedCurvature);

  // Rounding, per unit of ||s||, in the 2-norm: the Hessian's accumulation over n samples, (n + 3) u ||X||_F^2 / 4
  // <= (n + 3) u n / 4 (rows are in the unit ball); the residual's product with it, gamma_{d+1} d ||H|| with
  // ||H|| <= lambda n + n / 4.
  const gammaD = ((d + 1) * UNIT_ROUNDOFF) / (1 - (d + 1) * UNIT_ROUNDOFF);
  const roundingPerStep = ((n + 3) * UNIT_ROUNDOFF * n) / 4 + gammaD * d * (lambda * n + n / 4);
  // ||X'||_2 <= sqrt(||X'ᵀX'||_F), inflated for the Gram matrix's own rounding; likewise ||X' s||.
  const slack = 1 + (n + d + 10) * UNIT_ROUNDOFF;
  const spectralBound = Math.sqrt(frobeniusNormSymmetricPacked(keptGram, d) * slack);

  const next = input.into ?? new Float64Array(w.length);
  const gs = new Float64Array(d);
  let iterations = 0;
  let taylorSquares = 0;
  let solveSquares = 0;
  let roundingSquares = 0;
  let boundSquares = 0;
  for (let c = 0; c < K; c++) {
    await yielder.maybeYield();
    const b = new Float64Array(d);
    for (let j = 0; j < d; j++) b[j] = delta[j * K + c];
    const solved = solveDowndated(operators[c], d, removed, removedCurvature, c, lambda * removed.n, b);
    iterations += solved.iterations;
    const s = solved.x;
    for (let j = 0; j < d; j++) next[j * K + c] = w[j * K + c] + s[j];
    const stepNorm = norm2(s);
    multiplySymmetricPacked(keptGram, d, s, gs);
    const projectedNorm = Math.sqrt(Math.max(0, dot(s, gs)) * slack);
    const taylor = LOGISTIC_GAMMA * spectralBound * stepNorm * projectedNorm;
    const rounding = roundingPerStep * stepNorm;
    const solve = solved.residualNorm;
    taylorSquares += taylor * taylor;
    solveSquares += solve * solve;
    roundingSquares += rounding * rounding;
    boundSquares += (taylor + solve + rounding) ** 2;
  }
  return {
    w: next,
    residualBound: Math.sqrt(boundSquares),
    taylorBound: Math.sqrt(taylorSquares),
    solveResidual: Math.sqrt(solveSquares),
    roundingBound: Math.sqrt(roundingSquares),
    spectralBound,
    iterations,
  };
}

/** Throwaway removals a version's preparation runs (warmUpNewtonRemoval): V8 has optimised the step's loops by then. */
export const WARM_UP_REMOVALS = 4;

/**
 * Runs the removal of `data`'s first row from the prepared operators WARM_UP_REMOVALS times and discards the
 * results, as the last part of a version's preparation (after its publication). V8 compiles the step's loops
 * (conjugate gradients, the dense and packed products, the bound) with optimisation only after they have run a
 * few times, so without this a process's first removals pay for the compilation (on the methods bench's MNIST
 * model, 110 ms of CPU against 35 ms once compiled). Nothing computed here is kept or published: the real
 * removal's inputs, arithmetic and bits are those of computeNewtonRemoval alone.
 */
export async function warmUpNewtonRemoval(
  data: OvrData,
  w: Float64Array,
  lambda: number,
  operators: readonly RemovalOperator[],
  gram: Float64Array,
  yielder = new Yielder(),
): Promise<void> {
  if (data.n < 2) return;
  const end = data.rowStart[1];
  const removed: OvrData = {
    n: 1,
    d: data.d,
    k: data.k,
    rowStart: Int32Array.of(0, end),
    cols: data.cols.subarray(0, end),
    values: data.values.subarray(0, end),
    signs: data.signs.subarray(0, data.k),
  };
  for (let run = 0; run < WARM_UP_REMOVALS; run++) {
    // Laid out as a real removal's (allocateCertifiedState, w⁻ written into it), so the compiled code fits it.
    const kept = allocateCertifiedState(data.d, data.k);
    kept.gram.set(gram);
    accumulateGram(removed, kept.gram, -1);
    await computeNewtonRemoval({ keptCount: data.n - 1, removed, w, lambda, operators, keptGram: kept.gram, into: kept.w }, yielder);
  }
}

/** Removals rehearseNewtonRemoval runs on its made-up problem. */
const REHEARSALS = 40;

/**
 * Runs the removal step REHEARSALS times on a made-up problem of 8 features, K classes and 4 rows (its operators
 * made by prepareRemovalOperators), in well under a millisecond, and discards it: the first part of a version's
 * preparation. V8 then marks the step's functions for optimisation at the start of the preparation and compiles
 * them on its worker threads while the Hessians are made, instead of after the warm-up at its end
 * (warmUpNewtonRemoval), where on a loaded machine that compilation (50 ms of CPU) ran during the first removal.
 * The compiled code is the same whatever the sizes; nothing of the version is read or changed.
 */
export async function rehearseNewtonRemoval(k: number): Promise<void> {
  const d = 8;
  const n = 4;
  const rows: OvrData = {
    n,
    d,
    k,
    rowStart: Int32Array.of(0, 2, 4, 6, 8),
    cols: Int32Array.of(0, 4, 1, 5, 2, 6, 3, 7),
    values: Float64Array.of(0.5, 0.25, 0.4, 0.3, 0.6, 0.2, 0.35, 0.45),
    signs: Float64Array.from({ length: n * k }, (_, i) => (i % k === Math.floor(i / k) % k ? 1 : -1)),
  };
  const w = Float64Array.from({ length: d * k }, (_, i) => 0.01 * (i + 1));
  const lambda = 0.1;
  const operators = await prepareRemovalOperators(rows, lambda, w);
  const gram = computeGram(rows);
  for (let run = 0; run < REHEARSALS / WARM_UP_REMOVALS; run++) await warmUpNewtonRemoval(rows, w, lambda, operators, gram);
}

/**
 * Solves (H - sum_{j in F} D_jc x_j x_jᵀ - shift I) x = b by conjugate gradients preconditioned with H⁻¹, H p kept by
 * recursion; returns the final residual's norm computed afresh with H (not the recurrence's).
 */
function solveDowndated(
  operator: RemovalOperator,
  d: number,
  removed: OvrData,
  removedCurvature: Float64Array,
  c: number,
  shift: number,
  b: Float64Array,
): { x: Float64Array; iterations: number; residualNorm: number } {
  const K = removed.k;
  /** out -= (sum_j D_jc x_j x_jᵀ + shift I) v */
  const subtractDowndate = (v: Float64Array, out: Float64Array) => {
    for (let j = 0; j < d; j++) out[j] -= shift * v[j];
    for (let i = 0; i < removed.n; i++) {
      let projection = 0;
      for (let p = removed.rowStart[i]; p < removed.rowStart[i + 1]; p++) projection += removed.values[p] * v[removed.cols[p]];
      const scale = removedCurvature[i * K + c] * projection;
      for (let p = removed.rowStart[i]; p < removed.rowStart[i + 1]; p++) out[removed.cols[p]] -= scale * removed.values[p];
    }
  };
  const x = new Float64Array(d);
  const bNorm = norm2(b);
  if (bNorm === 0) return { x, iterations: 0, residualNorm: 0 };
  const r = b.slice();
  const z = new Float64Array(d);
  multiplyDense(operator.inverse, d, r, z);
  const p = z.slice();
  const hp = r.slice(); // H p = H H⁻¹ r = r
  const ap = new Float64Array(d);
  let rz = dot(r, z);
  const maxIterations = Math.min(d, 2 * removed.n + 50);
  let iterations = 0;
  while (iterations < maxIterations) {
    ap.set(hp);
    subtractDowndate(p, ap);
    const alpha = rz / dot(p, ap);
    for (let j = 0; j < d; j++) {
      x[j] += alpha * p[j];
      r[j] -= alpha * ap[j];
    }
    iterations++;
    if (norm2(r) <= RELATIVE_TOLERANCE * bNorm) break;
    multiplyDense(operator.inverse, d, r, z);
    const rzNext = dot(r, z);
    const beta = rzNext / rz;
    rz = rzNext;
    for (let j = 0; j < d; j++) {
      p[j] = z[j] + beta * p[j];
      hp[j] = r[j] + beta * hp[j];
    }
  }
  multiplySymmetricPacked(operator.hessian, d, x, ap);
  subtractDowndate(x, ap);
  for (let j = 0; j < d; j++) ap[j] -= b[j];
  return { x, iterations, residualNorm: norm2(ap) };
}
