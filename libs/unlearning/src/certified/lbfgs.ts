// Deterministic L-BFGS (Nocedal & Wright 2006, Algorithm 7.4/7.5) with a backtracking Armijo line search,
// for the strongly convex objectives of certified removal (so every accepted step has sᵀy > 0).
import { dot } from './packed';
import { Yielder } from './yield';

export interface LbfgsOptions {
  /** Stop once ||gradient|| <= this. */
  gradientTolerance: number;
  maxIterations: number;
  /** Pairs kept (default 10). */
  memory?: number;
  /** Called after each iteration with its gradient norm. */
  onIteration?: (iteration: number, gradientNorm: number) => void;
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  gradientNorm: number;
  iterations: number;
  /** ||gradient|| <= gradientTolerance was reached. */
  converged: boolean;
}

/** f(x) with its gradient written into `gradient`. */
export type ObjectiveFunction = (x: Float64Array, gradient: Float64Array) => number;

const ARMIJO = 1e-4;
const MAX_BACKTRACKS = 60;

/** Minimizes f from `start`; gives the event loop a turn between evaluations (see Yielder). */
export async function minimizeLbfgs(f: ObjectiveFunction, start: Float64Array, options: LbfgsOptions): Promise<LbfgsResult> {
  const yielder = new Yielder();
  const m = options.memory ?? 10;
  const n = start.length;
  let x = start.slice();
  let g = new Float64Array(n);
  let value = f(x, g);
  let gradientNorm = Math.sqrt(dot(g, g));
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const direction = new Float64Array(n);
  const alpha = new Float64Array(m);
  let iteration = 0;
  while (gradientNorm > options.gradientTolerance && iteration < options.maxIterations) {
    // Two-loop recursion: direction = -H g.
    for (let i = 0; i < n; i++) direction[i] = -g[i];
    for (let p = s.length - 1; p >= 0; p--) {
      alpha[p] = rho[p] * dot(s[p], direction);
      for (let i = 0; i < n; i++) direction[i] -= alpha[p] * y[p][i];
    }
    const scale = s.length > 0 ? dot(s[s.length - 1], y[y.length - 1]) / dot(y[y.length - 1], y[y.length - 1]) : 1 / gradientNorm;
    for (let i = 0; i < n; i++) direction[i] *= scale;
    for (let p = 0; p < s.length; p++) {
      const beta = rho[p] * dot(y[p], direction);
      for (let i = 0; i < n; i++) direction[i] += (alpha[p] - beta) * s[p][i];
    }
    let slope = dot(g, direction);
    if (!(slope < 0)) {
      // Not a descent direction (rounding): restart from steepest descent.
      s.length = y.length = rho.length = 0;
      for (let i = 0; i < n; i++) direction[i] = -g[i] / gradientNorm;
      slope = dot(g, direction);
    }
    let step = 1;
    const next = new Float64Array(n);
    const nextGradient = new Float64Array(n);
    let nextValue = Infinity;
    let accepted = false;
    for (let b = 0; b < MAX_BACKTRACKS; b++) {
      for (let i = 0; i < n; i++) next[i] = x[i] + step * direction[i];
      await yielder.maybeYield();
      nextValue = f(next, nextGradient);
      if (nextValue <= value + ARMIJO * step * slope) {
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break; // no decrease left to find at this precision
    const sk = new Float64Array(n);
    const yk = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sk[i] = next[i] - x[i];
      yk[i] = nextGradient[i] - g[i];
    }
    const sy = dot(sk, yk);
    if (sy > 0) {
      if (s.length === m) {
        s.shift();
        y.shift();
        rho.shift();
      }
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
    }
    x = next;
    g = nextGradient;
    value = nextValue;
    gradientNorm = Math.sqrt(dot(g, g));
    iteration++;
    options.onIteration?.(iteration, gradientNorm);
  }
  return { x, value, gradientNorm, iterations: iteration, converged: gradientNorm <= options.gradientTolerance };
}
