import fc from 'fast-check';
import {
  backwardSolvePacked,
  dotRange,
  choleskyPacked,
  choleskySolvePacked,
  forwardSolvePacked,
  frobeniusNormSymmetricPacked,
  invertFactoredPacked,
  multiplyDense,
  multiplySymmetricPacked,
  packedLength,
  rowOffset,
} from './packed';

// Slow, obvious references on dense d x d arrays (row-major), for comparison with the packed code.
function dense(d: number, entry: (i: number, j: number) => number): number[][] {
  return Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => entry(i, j)));
}
function pack(a: number[][]): Float64Array {
  const out = new Float64Array(packedLength(a.length));
  a.forEach((row, i) => row.forEach((v, j) => j <= i && (out[rowOffset(i) + j] = v)));
  return out;
}
function unpackLower(l: Float64Array, d: number): number[][] {
  return dense(d, (i, j) => (j <= i ? l[rowOffset(i) + j] : 0));
}
function multiply(a: number[][], b: number[][]): number[][] {
  return dense(a.length, (i, j) => a[i].reduce((s, _, k) => s + a[i][k] * b[k][j], 0));
}
const transpose = (a: number[][]) => dense(a.length, (i, j) => a[j][i]);
const apply = (a: number[][], x: ArrayLike<number>) => a.map((row) => row.reduce((s, v, j) => s + v * x[j], 0));

/** A random symmetric positive definite matrix: B Bᵀ + d I. */
const spd = fc.integer({ min: 1, max: 12 }).chain((d) =>
  fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: d * d, maxLength: d * d }).map((values) => {
    const b = dense(d, (i, j) => values[i * d + j]);
    const a = multiply(b, transpose(b)).map((row, i) => row.map((v, j) => v + (i === j ? d : 0)));
    return { d, a, x: Float64Array.from({ length: d }, (_, i) => values[i] + 0.5) };
  }),
);

describe('packed linear algebra', () => {
  it('factors A = L Lᵀ, solves with L, Lᵀ and both, inverts, and multiplies, as the dense reference does', async () => {
    await fc.assert(
      fc.asyncProperty(spd, async ({ d, a, x }) => {
        const l = await choleskyPacked(pack(a), d);
        const lower = unpackLower(l, d);
        const product = multiply(lower, transpose(lower));
        product.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(a[i][j], 8)));

        const forward = x.slice();
        forwardSolvePacked(l, d, forward);
        apply(lower, forward).forEach((v, i) => expect(v).toBeCloseTo(x[i], 8));
        const backward = x.slice();
        backwardSolvePacked(l, d, backward);
        apply(transpose(lower), backward).forEach((v, i) => expect(v).toBeCloseTo(x[i], 8));
        const solved = x.slice();
        choleskySolvePacked(l, d, solved);
        apply(a, solved).forEach((v, i) => expect(v).toBeCloseTo(x[i], 7));

        const out = new Float64Array(d);
        multiplySymmetricPacked(pack(a), d, x, out);
        apply(a, x).forEach((v, i) => expect(out[i]).toBeCloseTo(v, 9));
        const frobenius = Math.sqrt(a.flat().reduce((s, v) => s + v * v, 0));
        expect(frobeniusNormSymmetricPacked(pack(a), d)).toBeCloseTo(frobenius, 8);

        const inverse = await invertFactoredPacked(l, d);
        const rows = dense(d, (i, j) => inverse[i * d + j]);
        multiply(rows, a).forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(i === j ? 1 : 0, 8)));
        multiplyDense(inverse, d, x, out);
        apply(rows, x).forEach((v, i) => expect(out[i]).toBeCloseTo(v, 10));
      }),
      { numRuns: 60 },
    );
  });

  it('multiplies by a packed symmetric matrix with the bits of the two-loop product (column updates, then the row dot product)', () => {
    // The product as it was written before its loops were fused: each row's column updates, then its dot product.
    const twoLoops = (a: Float64Array, d: number, x: Float64Array, out: Float64Array) => {
      out.fill(0);
      for (let i = 0; i < d; i++) {
        const ri = rowOffset(i);
        for (let j = 0; j < i; j++) out[j] += a[ri + j] * x[i];
        out[i] += dotRange(a, ri, x, 0, i) + a[ri + i] * x[i];
      }
    };
    const bits = (v: Float64Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((d) =>
          fc.record({
            d: fc.constant(d),
            a: fc.float64Array({ minLength: packedLength(d), maxLength: packedLength(d), noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
            x: fc.float64Array({ minLength: d, maxLength: d, noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
          }),
        ),
        ({ d, a, x }) => {
          const fused = new Float64Array(d);
          const reference = new Float64Array(d);
          multiplySymmetricPacked(a, d, x, fused);
          twoLoops(a, d, x, reference);
          expect(bits(fused)).toBe(bits(reference));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a matrix that is not positive definite, naming the pivot', async () => {
    const indefinite = pack([
      [1, 2],
      [2, 1],
    ]);
    await expect(choleskyPacked(indefinite, 2)).rejects.toThrow('the Hessian is not positive definite (pivot 1 is -3)');
  });
});
