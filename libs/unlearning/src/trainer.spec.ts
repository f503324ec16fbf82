/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { initializeWeights, serializeWeights } from './architecture';
import { SeededRandom } from './random';
import { sha256Hex } from './hash';
import { referenceStep } from './testing/reference-network';
import { MAX_STEPS_PER_RUN, StepRunner } from './trainer';
import { buildStepGraph, weightNames } from './step-graph';
import { weightShapes } from './architecture';
import { createSession } from './runtime';
import * as ort from 'onnxruntime-node';
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

  /** The one-step graph run once per batch on its own session: what every step did before steps ran in a Scan. */
  async function oneGraphPerStep(layers: number[], batchSize: number, weightDecay: number, threads: number, rows: ReturnType<typeof randomBatch>['rows'], batches: number[][]) {
    const session = await createSession(buildStepGraph(layers, batchSize, 0.2, weightDecay), { intraOpNumThreads: threads });
    const names = weightNames(layers);
    const shapes = weightShapes(layers);
    const [features, classes] = [layers[0], layers[layers.length - 1]];
    let weights = initializeWeights(layers, 'scan');
    for (const batch of batches) {
      const x = new Float32Array(batchSize * features);
      const y = new Float32Array(batchSize * classes);
      const rowScale = new Float32Array(batchSize);
      batch.forEach((r, i) => {
        x.set(rows[r].features, i * features);
        y[i * classes + rows[r].label] = 1;
        rowScale[i] = 1 / batch.length;
      });
      const feeds: Record<string, ort.Tensor> = {
        x: new ort.Tensor('float32', x, [batchSize, features]),
        y: new ort.Tensor('float32', y, [batchSize, classes]),
        row_scale: new ort.Tensor('float32', rowScale, [batchSize, 1]),
      };
      names.forEach((name, i) => (feeds[name] = new ort.Tensor('float32', weights[i], shapes[i])));
      const out = await session.run(feeds);
      weights = names.map((name) => out[`${name}_next`].data as Float32Array);
    }
    await session.release();
    return weights;
  }

  it.each([
    { layers: [20, 12, 5], batchSize: 8, weightDecay: 0, threads: 1 },
    { layers: [20, 12, 5], batchSize: 8, weightDecay: 0.01, threads: 2 },
    { layers: [30, 16, 9, 4], batchSize: 16, weightDecay: 0, threads: 2 },
    { layers: [12, 3], batchSize: 4, weightDecay: 0, threads: 1 },
  ])('runSteps (a Scan of the step, several runs) gives the bits of the one-step graph run once per batch: $layers, batch $batchSize, decay $weightDecay, $threads threads', async ({ layers, batchSize, weightDecay, threads }) => {
    const { rows } = randomBatch(layers[0], layers[layers.length - 1], 200, `scan ${layers.join('-')}`);
    // More steps than one run takes, and short batches among them (padding rows).
    const count = MAX_STEPS_PER_RUN + 37;
    const batches = Array.from({ length: count }, (_, k) => Array.from({ length: k % 7 === 6 ? 1 + (k % batchSize) : batchSize }, (_, i) => (k * 31 + i * 17) % 200));
    const runner = await StepRunner.create(layers, 0.2, batchSize, { intraOpNumThreads: threads }, weightDecay);
    expect(runner.stepsPerRun).toBeLessThan(count);
    let advanced = 0;
    const scanned = await runner.runSteps(initializeWeights(layers, 'scan'), rows, batches, () => advanced++);
    await runner.release();
    const stepped = await oneGraphPerStep(layers, batchSize, weightDecay, threads, rows, batches);
    expect(advanced).toBe(count);
    expect(sha256Hex(serializeWeights(scanned))).toBe(sha256Hex(serializeWeights(stepped)));
  });

  it('runSteps gives the bits of repeated step() calls and leaves its input intact', async () => {
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
