// One-vs-rest L2-regularised logistic regression in Guo et al.'s (2020) sum form, for K classes at once:
//   L(W; D) = sum_i sum_k log(1 + exp(-y_ik x_i.w_k)) + (lambda n / 2) ||W||^2 + <B, W>
// W and B are d x K, row-major (W[j * K + k]); lambda is the per-sample (mean-form) regularisation, as in
// their reference code's lr_loss. The loss's second derivative sigma(z)(1 - sigma(z)) is at most 1/4 and
// 1/4-Lipschitz as they take it (gamma = 1/4). Every loop runs in a fixed order (deterministic bits).
import { OvrData } from './ovr-data';
import { packedLength, rowOffset } from './packed';
import { Yielder } from './yield';

/** log(1 + exp(t)) without overflow. */
function softplus(t: number): number {
  return t > 0 ? t + Math.log1p(Math.exp(-t)) : Math.log1p(Math.exp(t));
}

/** 1 / (1 + exp(-t)). */
function sigmoid(t: number): number {
  return t >= 0 ? 1 / (1 + Math.exp(-t)) : Math.exp(t) / (1 + Math.exp(t));
}

/** margins[i * K + k] = x_i . w_k */
export function computeMargins(data: OvrData, w: Float64Array, margins: Float64Array): void {
  const { k: K } = data;
  margins.fill(0, 0, data.n * K);
  for (let i = 0; i < data.n; i++) {
    const mi = i * K;
    for (let p = data.rowStart[i]; p < data.rowStart[i + 1]; p++) {
      const v = data.values[p];
      const wj = data.cols[p] * K;
      for (let c = 0; c < K; c++) margins[mi + c] += v * w[wj + c];
    }
  }
}

/**
 * Adds sum_i of the loss terms' gradient (x_i times -y_ik sigma(-y_ik x_i.w_k)) to `gradient` and returns
 * the loss sum. `margins` is scratch of n * K.
 */
export function accumulateLoss(data: OvrData, w: Float64Array, gradient: Float64Array, margins: Float64Array): number {
  const { k: K } = data;
  computeMargins(data, w, margins);
  let loss = 0;
  for (let i = 0; i < data.n; i++) {
    const mi = i * K;
    for (let c = 0; c < K; c++) {
      const y = data.signs[mi + c];
      const t = -y * margins[mi + c];
      loss += softplus(t);
      margins[mi + c] = -y * sigmoid(t); // d loss / d margin
    }
    for (let p = data.rowStart[i]; p < data.rowStart[i + 1]; p++) {
      const v = data.values[p];
      const wj = data.cols[p] * K;
      for (let c = 0; c < K; c++) gradient[wj + c] += v * margins[mi + c];
    }
  }
  return loss;
}

export interface Objective {
  data: OvrData;
  /** Per-sample L2 regularisation; the sum form's coefficient is lambda * n. */
  lambda: number;
  /** The objective perturbation B (d x K), or null for the plain (non-certified) objective. */
  noise: Float64Array | null;
}

/** L(W) and its gradient (written into `gradient`); `margins` is scratch of n * K. */
export function evaluateObjective(objective: Objective, w: Float64Array, gradient: Float64Array, margins: Float64Array): number {
  const { data, lambda, noise } = objective;
  gradient.fill(0);
  let value = accumulateLoss(data, w, gradient, margins);
  const lambdaN = lambda * data.n;
  let squares = 0;
  for (let j = 0; j < w.length; j++) {
    squares += w[j] * w[j];
    gradient[j] += lambdaN * w[j];
  }
  value += (lambdaN / 2) * squares;
  if (noise) {
    for (let j = 0; j < w.length; j++) {
      value += noise[j] * w[j];
      gradient[j] += noise[j];
    }
  }
  return value;
}

/** sigma(z)(1 - sigma(z)) per sample and class at W: the loss's curvature. `margins` becomes it. */
export function computeCurvatures(data: OvrData, w: Float64Array, margins: Float64Array): void {
  computeMargins(data, w, margins);
  for (let i = 0; i < data.n * data.k; i++) {
    const s = sigmoid(margins[i]);
    margins[i] = s * (1 - s);
  }
}

/**
 * The K Hessians at W, each sum_i D_ik x_i x_iᵀ + lambda n I as a packed lower triangle (d x d). Accumulated
 * interleaved (entry p of class k at p * K + k) so that one pass over each row's nonzero pairs serves every class.
 * Gives the event loop a turn now and then (Yielder).
 */
export async function computeHessians(data: OvrData, lambda: number, w: Float64Array, yielder = new Yielder()): Promise<Float64Array[]> {
  const { d, k: K } = data;
  const curvature = new Float64Array(data.n * K);
  computeCurvatures(data, w, curvature);
  const interleaved = new Float64Array(packedLength(d) * K);
  for (let i = 0; i < data.n; i++) {
    if ((i & 63) === 0) await yielder.maybeYield();
    const di = i * K;
    const start = data.rowStart[i];
    const end = data.rowStart[i + 1];
    for (let a = start; a < end; a++) {
      const va = data.values[a];
      const ra = rowOffset(data.cols[a]);
      for (let b = start; b <= a; b++) {
        const vab = va * data.values[b];
        const at = (ra + data.cols[b]) * K;
        for (let c = 0; c < K; c++) interleaved[at + c] += vab * curvature[di + c];
      }
    }
  }
  const lambdaN = lambda * data.n;
  return Array.from({ length: K }, (_, c) => {
    const h = new Float64Array(packedLength(d));
    for (let p = 0; p < h.length; p++) h[p] = interleaved[p * K + c];
    for (let j = 0; j < d; j++) h[rowOffset(j) + j] += lambdaN;
    return h;
  });
}

/** The Gram matrix sum_i x_i x_iᵀ (packed lower triangle). */
export function computeGram(data: OvrData): Float64Array {
  const gram = new Float64Array(packedLength(data.d));
  accumulateGram(data, gram, 1);
  return gram;
}

/** gram += sign * sum_i x_i x_iᵀ over the rows of `data` (sign -1 removes them). */
export function accumulateGram(data: OvrData, gram: Float64Array, sign: 1 | -1): void {
  for (let i = 0; i < data.n; i++) {
    const start = data.rowStart[i];
    const end = data.rowStart[i + 1];
    for (let a = start; a < end; a++) {
      const va = sign * data.values[a];
      const ra = rowOffset(data.cols[a]);
      for (let b = start; b <= a; b++) gram[ra + data.cols[b]] += va * data.values[b];
    }
  }
}
