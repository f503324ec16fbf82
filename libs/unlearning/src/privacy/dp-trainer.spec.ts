/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { initializeWeights, serializeWeights, weightShapes } from '../architecture';
import { sha256Hex } from '../hash';
import { SeededRandom } from '../random';
import { referenceDpStep } from '../testing/reference-network';
import { rowsOf } from '../testing/factories';
import { DpStepRunner, dpGraphRows } from './dp-trainer';

function randomRows(features: number, classes: number, rows: number, label: string, scale = 1) {
  const random = new SeededRandom(label);
  const x = new Float32Array(rows * features);
  for (let i = 0; i < x.length; i++) x[i] = random.nextGaussian() * scale;
  const y = Int32Array.from({ length: rows }, () => Math.floor(random.nextFloat() * classes));
  return { x, y, rows: rowsOf(x, y, features) };
}

function noiseOf(layers: number[], label: string): Float32Array[] {
  const random = new SeededRandom(label);
  return weightShapes(layers).map((shape) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    random.fillGaussian(out);
    return out;
  });
}

describe('DP-SGD step graph (per-example clipping from row norms, noise fed in)', () => {
  const cases = [
    { name: 'logistic regression', layers: [5, 3], weightDecay: 0 },
    { name: 'MLP with one hidden layer', layers: [6, 8, 4], weightDecay: 0 },
    { name: 'MLP with two hidden layers and weight decay', layers: [7, 9, 5, 3], weightDecay: 0.2 },
  ];

  it.each(cases)('matches a float64 per-example reference for $name, with clipping that bites and that does not', async ({ layers, weightDecay }) => {
    for (const clipNorm of [0.05, 1e6]) {
      const constants = { learningRate: 0.3, weightDecay, clipNorm, noiseMultiplier: 0.7, denominator: 6 };
      const runner = await DpStepRunner.create(layers, 8, constants);
      try {
        for (const rows of [1, 5, 8, 19]) {
          const weights = initializeWeights(layers, `dp trial ${rows}`);
          weights.forEach((w, j) => j % 2 === 1 && w.forEach((_, k) => (w[k] = 0.1 * (k % 3) - 0.1)));
          const { x, y, rows: trainingRows } = randomRows(layers[0], layers[layers.length - 1], rows, `dp rows ${rows}`, 3);
          const batch = Int32Array.from({ length: rows }, (_, i) => i);
          const fast = await runner.runSteps(weights, trainingRows, [batch], () => `noise ${rows}`);
          const xs = Array.from(batch, (r) => Array.from(x.subarray(r * layers[0], (r + 1) * layers[0])));
          const slow = referenceDpStep(layers, weights, xs, Array.from(y), { ...constants, noise: noiseOf(layers, `noise ${rows}`) });
          fast.forEach((w, j) => w.forEach((v, k) => expect(Math.abs(v - slow[j][k])).toBeLessThan(2e-5 * Math.max(1, Math.abs(slow[j][k])))));
        }
      } finally {
        await runner.release();
      }
    }
  });

  it('clips: with a small C no example moves the weights by more than lr C / denominator (noise off), with a large C they do', async () => {
    const layers = [6, 8, 4];
    const weights = initializeWeights(layers, 'clip');
    const { rows } = randomRows(6, 4, 1, 'clip rows', 10);
    const moved = async (clipNorm: number) => {
      const runner = await DpStepRunner.create(layers, 4, { learningRate: 1, weightDecay: 0, clipNorm, noiseMultiplier: 1e-30, denominator: 1 });
      const next = await runner.runSteps(weights, rows, [Int32Array.of(0)], () => 'no noise to speak of');
      await runner.release();
      return Math.sqrt(next.reduce((s, w, j) => s + w.reduce((t, v, k) => t + (v - weights[j][k]) ** 2, 0), 0));
    };
    expect(await moved(0.01)).toBeLessThanOrEqual(0.01 * (1 + 1e-5));
    expect(await moved(0.01)).toBeGreaterThan(0.0099);
    expect(await moved(1e6)).toBeGreaterThan(0.1);
  });

  it('an empty Poisson batch is a noise-only step', async () => {
    const layers = [5, 3];
    const constants = { learningRate: 0.5, weightDecay: 0, clipNorm: 2, noiseMultiplier: 1.5, denominator: 10 };
    const runner = await DpStepRunner.create(layers, 4, constants);
    const weights = initializeWeights(layers, 'empty');
    const { rows } = randomRows(5, 3, 2, 'empty rows');
    const next = await runner.runSteps(weights, rows, [new Int32Array(0)], () => 'empty noise');
    await runner.release();
    const noise = noiseOf(layers, 'empty noise');
    next.forEach((w, j) => w.forEach((v, k) => expect(v).toBeCloseTo(weights[j][k] - (0.5 / 10) * 3 * noise[j][k], 5)));
  });

  it('a batch larger than the graph runs in chunks whose sums are added: the same step as one graph that holds it', async () => {
    const layers = [7, 9, 3];
    const constants = { learningRate: 0.2, weightDecay: 0, clipNorm: 0.5, noiseMultiplier: 1, denominator: 20 };
    const small = await DpStepRunner.create(layers, 8, constants);
    const large = await DpStepRunner.create(layers, 32, constants);
    const { rows } = randomRows(7, 3, 30, 'chunks');
    const batch = Int32Array.from({ length: 30 }, (_, i) => i);
    const weights = initializeWeights(layers, 'chunks');
    const chunked = await small.runSteps(weights, rows, [batch], () => 'chunk noise');
    const whole = await large.runSteps(weights, rows, [batch], () => 'chunk noise');
    await small.release();
    await large.release();
    chunked.forEach((w, j) => w.forEach((v, k) => expect(v).toBeCloseTo(whole[j][k], 5)));
  });

  it('gives the same bits for the same weights, rows and noise labels in a new session, and other bits for another noise', async () => {
    const layers = [20, 16, 5];
    const constants = { learningRate: 0.1, weightDecay: 0, clipNorm: 1, noiseMultiplier: 1.1, denominator: 16 };
    const { rows } = randomRows(20, 5, 60, 'bits');
    const steps = [0, 1, 2, 3].map((s) => Int32Array.from({ length: 12 + s * 5 }, (_, i) => (i * 7 + s) % 60));
    const run = async (label: string) => {
      const runner = await DpStepRunner.create(layers, dpGraphRows(16), constants);
      const out = await runner.runSteps(initializeWeights(layers, 'bits'), rows, steps, (k) => `${label}|${k}`);
      await runner.release();
      return sha256Hex(serializeWeights(out));
    };
    const first = await run('seed a');
    expect(await run('seed a')).toBe(first);
    expect(await run('seed b')).not.toBe(first);
  });
});
