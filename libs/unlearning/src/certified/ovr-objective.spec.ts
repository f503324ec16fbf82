import { SeededRandom } from '../random';
import { buildOvrData } from './ovr-data';
import { accumulateGram, computeGram, computeHessians, evaluateObjective } from './ovr-objective';
import { rowOffset } from './packed';

const d = 5;
const k = 3;
const random = new SeededRandom('ovr-objective-spec');
const rows = Array.from({ length: 40 }, (_, i) => ({
  externalId: `r${i}`,
  // Some rows inside the unit ball, some far outside it, some with zeros.
  features: Array.from({ length: d }, (_, j) => ((i + j) % 4 === 0 ? 0 : (random.nextFloat() - 0.5) * (i % 2 === 0 ? 0.3 : 6))),
  label: i % k,
}));
const data = buildOvrData(rows, d, k);
const noise = Float64Array.from({ length: d * k }, () => random.nextGaussian());
const objective = { data, lambda: 0.01, noise };
const w = Float64Array.from({ length: d * k }, () => random.nextGaussian());

function valueAt(x: Float64Array): number {
  return evaluateObjective(objective, x, new Float64Array(d * k), new Float64Array(data.n * k));
}

describe('one-vs-rest logistic objective', () => {
  it('projects each row onto the unit ball, keeping rows inside it as they are, and signs labels one-vs-rest', () => {
    for (let i = 0; i < data.n; i++) {
      let squares = 0;
      for (let p = data.rowStart[i]; p < data.rowStart[i + 1]; p++) squares += data.values[p] ** 2;
      const original = Math.hypot(...rows[i].features.map((v) => Math.fround(v)));
      expect(Math.sqrt(squares)).toBeCloseTo(Math.min(1, original), 12);
      expect(Array.from(data.signs.subarray(i * k, (i + 1) * k))).toEqual([0, 1, 2].map((c) => (c === rows[i].label ? 1 : -1)));
    }
  });

  it('has the gradient that central differences measure', () => {
    const gradient = new Float64Array(d * k);
    evaluateObjective(objective, w, gradient, new Float64Array(data.n * k));
    const h = 1e-6;
    for (let j = 0; j < d * k; j++) {
      const plus = w.slice();
      const minus = w.slice();
      plus[j] += h;
      minus[j] -= h;
      expect(gradient[j]).toBeCloseTo((valueAt(plus) - valueAt(minus)) / (2 * h), 5);
    }
  });

  it('has, per class, the Hessian that differences of the gradient measure', async () => {
    const hessians = await computeHessians(data, objective.lambda, w);
    const h = 1e-6;
    const gradientAt = (x: Float64Array) => {
      const g = new Float64Array(d * k);
      evaluateObjective(objective, x, g, new Float64Array(data.n * k));
      return g;
    };
    for (let c = 0; c < k; c++) {
      for (let a = 0; a < d; a++) {
        const plus = w.slice();
        const minus = w.slice();
        plus[a * k + c] += h;
        minus[a * k + c] -= h;
        const gPlus = gradientAt(plus);
        const gMinus = gradientAt(minus);
        for (let b = 0; b <= a; b++) {
          const measured = (gPlus[b * k + c] - gMinus[b * k + c]) / (2 * h);
          expect(hessians[c][rowOffset(a) + b]).toBeCloseTo(measured, 4);
        }
      }
    }
  });

  it('keeps a Gram matrix that removing rows downdates to the Gram matrix of the rest', () => {
    const gram = computeGram(data);
    const removed = buildOvrData(rows.slice(0, 7), d, k);
    accumulateGram(removed, gram, -1);
    const rest = computeGram(buildOvrData(rows.slice(7), d, k));
    rest.forEach((v, p) => expect(gram[p]).toBeCloseTo(v, 12));
  });
});
