/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { initializeWeights } from './architecture';
import type { Aggregation } from './config';
import { UnlearningError } from './errors';
import { sha256Hex } from './hash';
import { buildInferenceGraph } from './inference-graph';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ONNX_OPSET, ONNX_PRODUCER_NAME } from './onnx-graph';
import { SeededRandom } from './random';
import { loadVerifiedModel } from './serve';
import { referenceProbabilities } from './testing/reference-network';

const layers = [5, 7, 3];
const members = [initializeWeights(layers, 'm0'), initializeWeights(layers, 'm1'), initializeWeights(layers, 'm2')];
members.forEach((weights, m) => weights[1].forEach((_, k) => (weights[1][k] = 0.05 * (k - 3) * (m + 1))));
const random = new SeededRandom('rows');
const rows = Array.from({ length: 9 }, () => Array.from({ length: 5 }, () => random.nextGaussian()));

/** The published graph of `members` aggregated by `aggregation`, run by onnxruntime on `rows`. */
async function predictEnsemble(aggregation: Aggregation) {
  const bytes = buildInferenceGraph(layers, members, aggregation);
  const model = await loadVerifiedModel(bytes, sha256Hex(bytes));
  try {
    return await model.predict(rows);
  } finally {
    await model.release();
  }
}

describe('the published ensemble graph', () => {
  it('averages the members softmax outputs (mean)', async () => {
    const out = await predictEnsemble('mean');
    rows.forEach((row, i) => {
      const expected = [0, 1, 2].map((c) => members.reduce((s, w) => s + referenceProbabilities(layers, w, row)[c], 0) / members.length);
      expected.forEach((p, c) => expect(out.probabilities[i * 3 + c]).toBeCloseTo(p, 5));
      expect(out.labels[i]).toBe(expected.indexOf(Math.max(...expected)));
    });
  });

  it('counts the members votes (vote)', async () => {
    const out = await predictEnsemble('vote');
    rows.forEach((row, i) => {
      const votes = [0, 0, 0];
      for (const w of members) {
        const p = referenceProbabilities(layers, w, row);
        votes[p.indexOf(Math.max(...p))] += 1;
      }
      votes.forEach((v, c) => expect(out.probabilities[i * 3 + c]).toBeCloseTo(v / 3, 6));
      expect(out.labels[i]).toBe(votes.indexOf(Math.max(...votes)));
    });
  });

  it('is a standard ONNX model: opset 17, fixed producer, input/probabilities/label, no timestamps', () => {
    const bytes = buildInferenceGraph(layers, members, 'mean');
    expect(Buffer.from(buildInferenceGraph(layers, members, 'mean')).equals(Buffer.from(bytes))).toBe(true);
    const decoded = onnx.ModelProto.decode(bytes);
    expect(decoded.opsetImport.map((o) => Number(o.version))).toEqual([ONNX_OPSET]);
    expect(decoded.producerName).toBe(ONNX_PRODUCER_NAME);
    expect(decoded.graph?.input?.map((i) => i.name)).toEqual(['input']);
    expect(decoded.graph?.output?.map((o) => o.name)).toEqual(['probabilities', 'label']);
    expect(decoded.graph?.output?.[1].type?.tensorType?.elemType).toBe(onnx.TensorProto.DataType.INT64);
  });
});

describe('loadVerifiedModel', () => {
  const bytes = buildInferenceGraph(layers, members.slice(0, 1), 'mean');

  it('refuses bytes whose SHA-256 differs, with HASH_MISMATCH and both hashes', async () => {
    const tampered = Uint8Array.from(bytes);
    tampered[tampered.length - 10] ^= 1;
    const error = await loadVerifiedModel(tampered, sha256Hex(bytes)).catch((e) => e);
    expect(error).toBeInstanceOf(UnlearningError);
    expect(error).toMatchObject({ code: 'HASH_MISMATCH', expectedSha256: sha256Hex(bytes), actualSha256: sha256Hex(tampered) });
  });

  it('refuses a malformed expected hash', async () => {
    await expect(loadVerifiedModel(bytes, 'ABC')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('predicts rows of the right width and refuses others', async () => {
    const model = await loadVerifiedModel(bytes, sha256Hex(bytes));
    expect(model.numFeatures).toBe(5);
    const out = await model.predict(rows.slice(0, 2));
    expect(out.labels).toHaveLength(2);
    expect(out.probabilities[0] + out.probabilities[1] + out.probabilities[2]).toBeCloseTo(1, 5);
    await expect(model.predict([[1, 2]])).rejects.toMatchObject({ code: 'INVALID_SAMPLE' });
    await model.release();
  });
});

describe("a VerifiedModel's release", () => {
  const bytes = buildInferenceGraph(layers, members.slice(0, 1), 'mean');
  const load = () => loadVerifiedModel(bytes, sha256Hex(bytes));
  /** The onnxruntime session underneath, to show that it was released (its run then fails). */
  const runSession = (model: object) =>
    (model as unknown as { session: ort.InferenceSession }).session.run({ input: new ort.Tensor('float32', new Float32Array(5), [1, 5]) });

  it('waits for a prediction already running (onnxruntime runs it on a later turn), then releases the session', async () => {
    const model = await load();
    const other = await load();
    const expected = await other.predict(rows);
    await other.release();
    const ended: string[] = [];
    const prediction = model.predict(rows).then((out) => (ended.push('prediction'), out));
    const released = model.release().then(() => ended.push('release'));
    // Without the count, the release ran first and the prediction failed with "Session already disposed.".
    await expect(prediction).resolves.toEqual(expected);
    await released;
    expect(ended).toEqual(['prediction', 'release']);
    await expect(runSession(model)).rejects.toThrow(/disposed/);
    await expect(model.predict(rows)).rejects.toMatchObject({ code: 'RUNTIME_ERROR' });
  });

  it('waits for a holder (retain) to be done; nothing new holds it once the release is asked for', async () => {
    const model = await load();
    const done = model.retain();
    let released = false;
    const release = model.release().then(() => (released = true));
    expect(() => model.retain()).toThrow(expect.objectContaining({ code: 'RUNTIME_ERROR' }));
    // The holder predicts after the release was asked for: the session is still there (many turns pass meanwhile).
    await expect(model.predict(rows)).resolves.toMatchObject({ labels: expect.any(Array) });
    expect(released).toBe(false);
    done();
    done(); // a second call does nothing
    await release;
    await expect(runSession(model)).rejects.toThrow(/disposed/);
    await expect(model.release()).resolves.toBeUndefined(); // a second release does not release twice
  });
});
