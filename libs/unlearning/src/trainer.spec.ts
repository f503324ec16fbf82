/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { initializeWeights, serializeWeights } from './architecture';
import { SeededRandom } from './random';
import { sha256Hex } from './hash';
import { referenceStep } from './testing/reference-network';
import { StepRunner } from './trainer';
import { rowsOf } from './testing/factories';

function randomBatch(features: number, classes: number, rows: number, label: string) {
  const random = new SeededRandom(label);
  const x = new Float32Array(rows * features);
  for (let i = 0; i < x.length; i++) x[i] = random.nextGaussian();
  const y = Int32Array.from({ length: rows }, () => Math.floor(random.nextFloat() * classes));
  return { x, y, rows: rowsOf(x, y, features), batch: Array.from({ length: rows }, (_, i) => i) };
}

describe('StepRunner (one ONNX graph per SGD step)', () => {
  const cases: { name: string; layers: number[]; weightDecay: number }[] = [
    { name: 'logistic regression', layers: [5, 3], weightDecay: 0 },
    { name: 'MLP with one hidden layer', layers: [6, 8, 4], weightDecay: 0 },
    { name: 'MLP with two hidden layers', layers: [7, 9, 5, 3], weightDecay: 0 },
    { name: 'MLP with weight decay', layers: [6, 8, 4], weightDecay: 0.5 },
  ];

  it.each(cases)('matches a float64 reference step for $name', async ({ layers, weightDecay }) => {
    const runner = await StepRunner.create(layers, 0.3, 8, {}, weightDecay);
    try {
      for (const trial of [0, 1, 2]) {
        const weights = initializeWeights(layers, `trial ${trial}`);
        // Non-zero biases so their gradients and the ReLU masks are exercised.
        weights.forEach((w, j) => j % 2 === 1 && w.forEach((_, k) => (w[k] = 0.1 * (k % 3) - 0.1)));
        const rows = 5 + trial;
        const { x, y, rows: trainingRows, batch } = randomBatch(layers[0], layers[layers.length - 1], rows, `batch ${trial}`);
        const fast = await runner.step(weights, trainingRows, batch);
        const xs = batch.map((r) => Array.from(x.subarray(r * layers[0], (r + 1) * layers[0])));
        const slow = referenceStep(layers, weights, xs, Array.from(y), 0.3, weightDecay);
        expect(fast.loss).toBeCloseTo(slow.loss, 4);
        fast.weights.forEach((w, j) => w.forEach((v, k) => expect(Math.abs(v - slow.weights[j][k])).toBeLessThan(1e-5)));
      }
    } finally {
      await runner.release();
    }
  });

  it.each([1, 2])('gives identical bits for identical inputs across sessions (%i threads)', async (threads) => {
    const layers = [784, 64, 10];
    const { rows, batch } = randomBatch(784, 10, 48, 'bits');
    const results: string[] = [];
    for (let session = 0; session < 3; session++) {
      const runner = await StepRunner.create(layers, 0.1, 48, { intraOpNumThreads: threads });
      let weights = initializeWeights(layers, 'bits');
      for (let i = 0; i < 5; i++) weights = (await runner.step(weights, rows, batch)).weights;
      results.push(sha256Hex(serializeWeights(weights)));
      await runner.release();
    }
    expect(results[1]).toBe(results[0]);
    expect(results[2]).toBe(results[0]);
  });

  it('runSteps (preallocated ping-pong outputs) gives the bits of repeated step() calls and leaves its input intact', async () => {
    const layers = [20, 12, 5];
    const runner = await StepRunner.create(layers, 0.2, 8);
    const { rows } = randomBatch(20, 5, 30, 'ping-pong');
    const batches = [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [11, 12, 13, 14, 15, 16, 17, 18], [29, 3, 17], [20, 21, 22, 23, 24]];
    const initial = initializeWeights(layers, 'ping-pong');
    const before = sha256Hex(serializeWeights(initial));
    let stepped = initial;
    for (const batch of batches) stepped = (await runner.step(stepped, rows, batch)).weights;
    const ran = await runner.runSteps(initial, rows, batches);
    const again = await runner.runSteps(initial, rows, batches);
    await runner.release();
    expect(sha256Hex(serializeWeights(ran))).toBe(sha256Hex(serializeWeights(stepped)));
    expect(sha256Hex(serializeWeights(again))).toBe(sha256Hex(serializeWeights(stepped)));
    expect(sha256Hex(serializeWeights(initial))).toBe(before);
    expect(sha256Hex(serializeWeights(ran))).not.toBe(before);
  });

  it('lowers the loss when repeated on one batch', async () => {
    const layers = [6, 8, 4];
    const runner = await StepRunner.create(layers, 0.5, 16);
    const { rows, batch } = randomBatch(6, 4, 16, 'descent');
    let weights = initializeWeights(layers, 'descent');
    const first = await runner.step(weights, rows, batch);
    weights = first.weights;
    let last = first.loss;
    for (let i = 0; i < 50; i++) ({ weights, loss: last } = await runner.step(weights, rows, batch));
    await runner.release();
    expect(last).toBeLessThan(first.loss * 0.5);
  });
});
