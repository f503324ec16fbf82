/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { initializeWeights, LayerSizes, Weights } from './architecture';
import { Aggregation } from './config';
import { loadMnist } from './datasets';
import { EnsembleEvaluator } from './ensemble-evaluator';
import { evaluateModel } from './evidence';
import { sha256Hex } from './hash';
import { buildInferenceGraph } from './inference-graph';
import { LabeledExample, packFeatures } from './samples';
import { loadVerifiedModel } from './serve';

/** The published file's probabilities for `rows`, run whole in a fresh session. */
async function fileProbabilities(onnx: Uint8Array, rows: readonly LabeledExample[]): Promise<Float32Array> {
  const model = await loadVerifiedModel(onnx, sha256Hex(onnx));
  try {
    return (await model.predict(packFeatures(rows, model.numFeatures))).probabilities;
  } finally {
    await model.release();
  }
}

/** Seeded members with some spread, so the ensemble's sums round differently from member to member. */
function members(layers: LayerSizes, count: number, label: string): { weightsSha256: string; weights: Weights }[] {
  return Array.from({ length: count }, (_, m) => {
    const weights = initializeWeights(layers, `${label}|${m}`).map((w) => w.map((v, i) => v * (1 + 0.5 * Math.sin(i + m))));
    return { weightsSha256: sha256Hex(`${label}|${m}`), weights };
  });
}

/** Every evaluation field, exactly (no tolerance: the member-by-member path must give the file's numbers). */
function expectSame(a: object, b: object): void {
  expect(a).toEqual(b);
}

describe('EnsembleEvaluator (member by member, with caches)', () => {
  const digits = loadMnist({ perDigit: 30 });
  const sets = { retain: digits.slice(0, 120), forget: digits.slice(120, 150), test: digits.slice(150) };
  const cases: { name: string; layers: LayerSizes; count: number; aggregation: Aggregation }[] = [
    { name: '10-member mean MLP', layers: [784, 32, 10], count: 10, aggregation: 'mean' },
    { name: '3-member vote MLP', layers: [784, 16, 10], count: 3, aggregation: 'vote' },
    { name: 'single-member mean logistic regression', layers: [784, 10], count: 1, aggregation: 'mean' },
    { name: 'single-member vote', layers: [784, 12, 10], count: 1, aggregation: 'vote' },
  ];

  it.each(cases)('gives exactly what running the published ONNX file gives, for a $name', async ({ layers, count, aggregation }) => {
    const ensemble = members(layers, count, 'exact');
    const onnx = buildInferenceGraph(
      layers,
      ensemble.map((m) => m.weights),
      aggregation,
    );
    const fromFile = await evaluateModel(onnx, sha256Hex(onnx), sets);
    const evaluator = new EnsembleEvaluator();
    try {
      // Bit for bit: the float32 sums and product are those of the graph's Sum and Mul.
      const all = [...sets.retain, ...sets.forget, ...sets.test];
      const expected = await fileProbabilities(onnx, all);
      const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      expect(bits(await evaluator.predict(layers, aggregation, ensemble, all)).equals(bits(expected))).toBe(true);
      expectSame(await evaluator.evaluate(layers, aggregation, ensemble, sets), fromFile);
      // Again from the caches, and with rows in other groupings (each row is computed alone).
      expectSame(await evaluator.evaluate(layers, aggregation, ensemble, sets), fromFile);
      const regrouped = { retain: sets.retain.slice(7), forget: sets.forget, test: sets.test };
      const partial = { retain: [...sets.retain.slice(0, 7)], forget: [], test: [] };
      const partly = await evaluator.evaluate(layers, aggregation, ensemble, partial);
      expectSame(partly, await evaluateModel(onnx, sha256Hex(onnx), partial));
      expectSame(await evaluator.evaluate(layers, aggregation, ensemble, regrouped), await evaluateModel(onnx, sha256Hex(onnx), regrouped));
    } finally {
      await evaluator.release();
    }
  });

  it('reuses unchanged members and recomputes a replaced one, matching the new file', async () => {
    const layers = [784, 24, 10];
    const before = members(layers, 5, 'old');
    const after = [...before.slice(0, 2), ...members(layers, 1, 'retrained'), ...before.slice(3)];
    const copy = (rows: LabeledExample[]) => rows.map((r) => ({ ...r, features: [...r.features] }));
    const evaluator = new EnsembleEvaluator({}, 2); // a cache smaller than the ensemble grows to fit it
    try {
      await evaluator.evaluate(layers, 'mean', before, sets);
      const file = buildInferenceGraph(
        layers,
        after.map((m) => m.weights),
        'mean',
      );
      const expected = await evaluateModel(file, sha256Hex(file), sets);
      expectSame(await evaluator.evaluate(layers, 'mean', after, sets), expected);
      const all = [...sets.retain, ...sets.forget, ...sets.test];
      const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      expect(bits(await evaluator.predict(layers, 'mean', after, all)).equals(bits(await fileProbabilities(file, all)))).toBe(true);
      // Fresh row objects with the same data: nothing cached applies, same numbers.
      const fresh = { retain: copy(sets.retain), forget: copy(sets.forget), test: copy(sets.test) };
      expectSame(await evaluator.evaluate(layers, 'mean', after, fresh), expected);
    } finally {
      await evaluator.release();
    }
  });

  it('refuses an empty ensemble', async () => {
    const evaluator = new EnsembleEvaluator();
    await expect(evaluator.evaluate([784, 10], 'mean', [], sets)).rejects.toThrow('at least one member');
  });
});
