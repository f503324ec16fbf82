// Symmetric and lower-triangular d x d matrices in packed row storage (row i holds columns 0..i), in float64.
// Every loop runs in a fixed order, so the same inputs give the same bits on any IEEE-754 machine: these are
// the linear algebra of certified removal's Hessians (Cholesky, triangular solves, products).
import { UnlearningError } from '../errors';
import { Yielder } from './yield';

/**
 * sum_{t < length} a[aStart + t] * b[bStart + t], in four interleaved partial sums (so the additions do not wait
 * on each other), added in a fixed order: the same inputs give the same bits.
 */
export function dotRange(a: Float64Array, aStart: number, b: Float64Array, bStart: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < length; t += 4) {
    s0 += a[aStart + t] * b[bStart + t];
    s1 += a[aStart + t + 1] * b[bStart + t + 1];
    s2 += a[aStart + t + 2] * b[bStart + t + 2];
    s3 += a[aStart + t + 3] * b[bStart + t + 3];
  }
  for (; t < length; t++) s0 += a[aStart + t] * b[bStart + t];
  return s0 + s1 + (s2 + s3);
}

/** Entries of a packed d x d lower triangle: d(d+1)/2. */
export function packedLength(d: number): number {
  return (d * (d + 1)) / 2;
}

/** Offset of row i in packed storage (row i holds columns 0..i). */
export function rowOffset(i: number): number {
  return (i * (i + 1)) / 2;
}

/**
 * Cholesky factor of a symmetric positive definite matrix (packed lower triangle, read only): L with
 * L Lᵀ = A, packed. Row-oriented (each entry is a dot product of two contiguous row prefixes).
 * Throws RUNTIME_ERROR when A is not positive definite. Gives the event loop a turn now and then (Yielder).
 */
export async function choleskyPacked(a: Float64Array, d: number, yielder = new Yielder()): Promise<Float64Array> {
  const l = new Float64Array(a.length);
  for (let i = 0; i < d; i++) {
    await yielder.maybeYield();
    const ri = rowOffset(i);
    for (let j = 0; j <= i; j++) {
      const rj = rowOffset(j);
      const s = a[ri + j] - dotRange(l, ri, l, rj, j);
      if (i === j) {
        if (!(s > 0)) throw new UnlearningError('RUNTIME_ERROR', `the Hessian is not positive definite (pivot ${i} is ${s})`);
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

/** Solves L y = b in place (b becomes y). */
export function forwardSolvePacked(l: Float64Array, d: number, b: Float64Array): void {
  for (let i = 0; i < d; i++) {
    const ri = rowOffset(i);
    b[i] = (b[i] - dotRange(l, ri, b, 0, i)) / l[ri + i];
  }
}

/** Solves Lᵀ x = y in place (y becomes x); column-oriented so that it reads L by rows. */
export function backwardSolvePacked(l: Float64Array, d: number, y: Float64Array): void {
  for (let i = d - 1; i >= 0; i--) {
    const ri = rowOffset(i);
    const x = y[i] / l[ri + i];
    y[i] = x;
    for (let k = 0; k < i; k++) y[k] -= l[ri + k] * x;
  }
}

/** Solves (L Lᵀ) x = b in place. */
export function choleskySolvePacked(l: Float64Array, d: number, b: Float64Array): void {
  forwardSolvePacked(l, d, b);
  backwardSolvePacked(l, d, b);
}

/**
 * out = A x for a symmetric A given by its packed lower triangle. Row i adds A[i][j] x[i] to out[j] for j < i (the
 * upper triangle, column by column) and sets out[i] += dotRange(row i's first i entries, x) + A[i][i] x[i]; both
 * read row i in one pass (each entry loaded once, about twice as fast as two loops), with the same operations in
 * the same order as the two loops, so the same bits (packed.spec.ts compares them).
 */
export function multiplySymmetricPacked(a: Float64Array, d: number, x: Float64Array, out: Float64Array): void {
  out.fill(0);
  for (let i = 0; i < d; i++) {
    const ri = rowOffset(i);
    const xi = x[i];
    // dotRange's four interleaved partial sums, inlined beside the column updates.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let t = 0;
    for (; t + 3 < i; t += 4) {
      const a0 = a[ri + t];
      const a1 = a[ri + t + 1];
      const a2 = a[ri + t + 2];
      const a3 = a[ri + t + 3];
      out[t] += a0 * xi;
      out[t + 1] += a1 * xi;
      out[t + 2] += a2 * xi;
      out[t + 3] += a3 * xi;
      s0 += a0 * x[t];
      s1 += a1 * x[t + 1];
      s2 += a2 * x[t + 2];
      s3 += a3 * x[t + 3];
    }
    for (; t < i; t++) {
      const a0 = a[ri + t];
      out[t] += a0 * xi;
      s0 += a0 * x[t];
    }
    out[i] += s0 + s1 + (s2 + s3) + a[ri + i] * xi;
  }
}

/**
 * The inverse of A = L Lᵀ as a dense d x d row-major matrix, from its packed Cholesky factor: L⁻¹ column by column
 * (forward substitution reads L by rows), then A⁻¹ = L⁻ᵀ L⁻¹ as a sum of the outer products of L⁻¹'s rows, each
 * O(d³/6). A dense matrix-vector product then streams one contiguous row at a time (about twice as fast in
 * JavaScript as a packed symmetric product or a pair of triangular solves).
 */
export async function invertFactoredPacked(l: Float64Array, d: number, yielder = new Yielder()): Promise<Float64Array> {
  const inverseL = new Float64Array(l.length); // packed lower triangle of L⁻¹
  const column = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    await yielder.maybeYield();
    // L⁻¹ e_j: zero above j; forward substitution from row j on.
    column[j] = 1 / l[rowOffset(j) + j];
    for (let i = j + 1; i < d; i++) {
      const ri = rowOffset(i);
      column[i] = -dotRange(l, ri + j, column, j, i - j) / l[ri + i];
    }
    for (let i = j; i < d; i++) inverseL[rowOffset(i) + j] = column[i];
  }
  const inverse = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    await yielder.maybeYield();
    const rk = rowOffset(k);
    for (let i = 0; i <= k; i++) {
      const v = inverseL[rk + i];
      if (v === 0) continue;
      const row = i * d;
      for (let j = 0; j <= i; j++) inverse[row + j] += v * inverseL[rk + j];
    }
  }
  // Mirror the lower triangle.
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) inverse[j * d + i] = inverse[i * d + j];
  return inverse;
}

/** out = A x for a dense d x d row-major A. */
export function multiplyDense(a: Float64Array, d: number, x: Float64Array, out: Float64Array): void {
  for (let i = 0; i < d; i++) out[i] = dotRange(a, i * d, x, 0, d);
}

/** Frobenius norm of a symmetric matrix from its packed lower triangle. */
export function frobeniusNormSymmetricPacked(a: Float64Array, d: number): number {
  let sum = 0;
  for (let i = 0; i < d; i++) {
    const ri = rowOffset(i);
    for (let j = 0; j < i; j++) sum += 2 * a[ri + j] * a[ri + j];
    sum += a[ri + i] * a[ri + i];
  }
  return Math.sqrt(sum);
}

export function dot(a: Float64Array, b: Float64Array): number {
  return dotRange(a, 0, b, 0, a.length);
}

export function norm2(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}
