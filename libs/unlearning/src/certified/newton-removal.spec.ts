import { SeededRandom } from '../random';
import { drawObjectiveNoise, fitCertified, prepareRemovalOperators } from './certified-training';
import { computeNewtonRemoval, warmUpNewtonRemoval } from './newton-removal';
import { buildOvrData } from './ovr-data';
import { accumulateGram, accumulateLoss, computeGram, computeHessians, evaluateObjective } from './ovr-objective';
import { choleskyPacked, choleskySolvePacked, norm2 } from './packed';

// A small dense problem: 20 features, 3 classes, 240 rows (some outside the unit ball, projected).
const d = 20;
const k = 3;
const lambda = 1e-3;
const random = new SeededRandom('newton-removal-spec');
const rows = Array.from({ length: 240 }, (_, i) => {
  const label = i % k;
  return {
    externalId: `r${i}`,
    features: Array.from({ length: d }, (_, j) => (j % k === label ? 0.6 : 0) + (random.nextFloat() - 0.5) * (i % 5 === 0 ? 3 : 0.8)),
    label,
  };
});
const settings = { sigma: 0.5, noiseSeed: 'a1'.repeat(32) };

/**
 * The slow, obvious Newton step: the Hessian of L(.; D') built from the remaining rows themselves, factored, solved
 * against Delta (the removed rows' gradient plus their share of the regulariser).
 */
async function directNewtonStep(keptRows: typeof rows, removedRows: typeof rows, w: Float64Array): Promise<Float64Array> {
  const kept = buildOvrData(keptRows, d, k);
  const removed = buildOvrData(removedRows, d, k);
  const delta = new Float64Array(d * k);
  accumulateLoss(removed, w, delta, new Float64Array(removed.n * k));
  for (let j = 0; j < delta.length; j++) delta[j] += lambda * removed.n * w[j];
  const hessians = await computeHessians(kept, lambda, w);
  const next = w.slice();
  for (let c = 0; c < k; c++) {
    const b = Float64Array.from({ length: d }, (_, j) => delta[j * k + c]);
    choleskySolvePacked(await choleskyPacked(hessians[c], d), d, b);
    for (let j = 0; j < d; j++) next[j * k + c] += b[j];
  }
  return next;
}

function gradientNorm(rowsOf: typeof rows, w: Float64Array): number {
  const data = buildOvrData(rowsOf, d, k);
  const gradient = new Float64Array(d * k);
  evaluateObjective({ data, lambda, noise: drawObjectiveNoise(settings, d, k) }, w, gradient, new Float64Array(data.n * k));
  return norm2(gradient);
}

describe('the Newton removal from the full data\'s prepared operators', () => {
  it.each([
    ['one row', [17]],
    ['three rows of different classes', [3, 101, 200]],
    ['a row outside the unit ball', [5]],
  ])('equals the direct Newton step on the remaining data (%s), and its residual stays within the bound it reports', async (_, removedIndexes) => {
    const data = buildOvrData(rows, d, k);
    const fit = await fitCertified({ data, lambda, noise: drawObjectiveNoise(settings, d, k) });
    const operators = await prepareRemovalOperators(data, lambda, fit.w);
    const removedSet = new Set(removedIndexes);
    const keptRows = rows.filter((_, i) => !removedSet.has(i));
    const removedRows = removedIndexes.map((i) => rows[i]);
    const removed = buildOvrData(removedRows, d, k);
    const keptGram = computeGram(data);
    accumulateGram(removed, keptGram, -1);
    const step = await computeNewtonRemoval({ keptCount: keptRows.length, removed, w: fit.w, lambda, operators, keptGram });

    const direct = await directNewtonStep(keptRows, removedRows, fit.w);
    const moved = norm2(direct.map((v, j) => v - fit.w[j]));
    expect(moved).toBeGreaterThan(1e-4); // the step does something
    expect(norm2(step.w.map((v, j) => v - direct[j]))).toBeLessThanOrEqual(1e-9 * moved);
    // The gradient on D' at w⁻ is the training's residual plus what the step leaves: within the bound.
    expect(gradientNorm(keptRows, step.w)).toBeLessThanOrEqual(fit.gradientNorm + step.residualBound);
    expect(step.residualBound).toBeGreaterThan(0);
    expect(step.residualBound).toBeCloseTo(step.taylorBound, 6); // the solve and rounding terms are tiny beside the Taylor term
  });

  it('bounds ||X\'||_2 from above by the remaining data\'s Gram matrix', async () => {
    const data = buildOvrData(rows, d, k);
    const fit = await fitCertified({ data, lambda, noise: drawObjectiveNoise(settings, d, k) });
    const operators = await prepareRemovalOperators(data, lambda, fit.w);
    const removed = buildOvrData([rows[0]], d, k);
    const keptGram = computeGram(data);
    accumulateGram(removed, keptGram, -1);
    const step = await computeNewtonRemoval({ keptCount: rows.length - 1, removed, w: fit.w, lambda, operators, keptGram });
    // Power iteration gives ||X'||_2 from below; the bound must not be under it.
    const kept = buildOvrData(rows.slice(1), d, k);
    let v = new Float64Array(d).fill(1);
    let estimate = 0;
    for (let iteration = 0; iteration < 200; iteration++) {
      const next = new Float64Array(d);
      for (let i = 0; i < kept.n; i++) {
        let p = 0;
        for (let q = kept.rowStart[i]; q < kept.rowStart[i + 1]; q++) p += kept.values[q] * v[kept.cols[q]];
        for (let q = kept.rowStart[i]; q < kept.rowStart[i + 1]; q++) next[kept.cols[q]] += p * kept.values[q];
      }
      estimate = Math.sqrt(norm2(next) / norm2(v));
      v = next.map((x) => x / norm2(next));
    }
    expect(step.spectralBound).toBeGreaterThanOrEqual(estimate);
    expect(step.spectralBound).toBeLessThan(estimate * 2);
  });
});

describe("the preparation's warm-up removals", () => {
  it('change none of the arrays they share with the version (weights, Gram matrix, operators, rows), so the real removal gives the same bits after them', async () => {
    const data = buildOvrData(rows, d, k);
    const fit = await fitCertified({ data, lambda, noise: drawObjectiveNoise(settings, d, k) });
    const operators = await prepareRemovalOperators(data, lambda, fit.w);
    const gram = computeGram(data);
    const removed = buildOvrData([rows[17]], d, k);
    const step = async () => {
      const keptGram = gram.slice();
      accumulateGram(removed, keptGram, -1);
      return computeNewtonRemoval({ keptCount: rows.length - 1, removed, w: fit.w, lambda, operators, keptGram });
    };
    const shared = () => [fit.w, gram, data.values, data.signs, ...operators.flatMap((o) => [o.hessian, o.inverse])].map((a) => Buffer.from(a.slice().buffer));
    const before = shared();
    const cold = await step();
    await warmUpNewtonRemoval(data, fit.w, lambda, operators, gram);
    shared().forEach((bytes, i) => expect(bytes.equals(before[i])).toBe(true));
    const warm = await step();
    expect(Buffer.from(warm.w.buffer).equals(Buffer.from(cold.w.buffer))).toBe(true);
    expect(warm.residualBound).toBe(cold.residualBound);
    expect(norm2(cold.w.map((v, j) => v - fit.w[j]))).toBeGreaterThan(0); // the step moved the weights
  });
});
