import { JsonValue } from './events';
import { computeLosses, computeMembershipAuc } from './metrics';
import { RuntimeOptions } from './runtime';
import { LabeledExample, packFeatures } from './samples';
import { compareKeys, hashSampleKey } from './hash';
import { loadVerifiedModel, VerifiedModel } from './serve';

export interface ModelEvaluation {
  retainAccuracy: number;
  forgetAccuracy: number;
  /** Present when a test set was given. */
  testAccuracy?: number;
  /** Loss-threshold membership-inference AUC, forgotten vs held-out test samples; present with a test set. */
  membershipAuc?: number;
}

interface RowResult {
  predicted: number;
  loss: number;
}

/**
 * Per sample object, what the last two models (by ONNX SHA-256) predicted for it. A forget request evaluates
 * the model it forgets from on nearly the rows that model was evaluated on when it was published (its
 * retained subset and the test set), so the "before" side mostly reads from here. Each row's output depends
 * only on the model and the row; a different batch height can at most make onnxruntime pick another GEMM
 * kernel and change float rounding in the last bits.
 */
const rowResults = new WeakMap<object, { sha: string; label: number; result: RowResult }[]>();

/** Accuracy on the retain, forget and test sets, and the membership-inference AUC of forgotten vs test samples. */
export async function evaluateModel(
  onnx: Uint8Array,
  onnxSha256: string,
  sets: { retain: readonly LabeledExample[]; forget: readonly LabeledExample[]; test?: readonly LabeledExample[] },
  runtime?: RuntimeOptions,
): Promise<ModelEvaluation> {
  let model: VerifiedModel | undefined;
  try {
    const run = async (rows: readonly LabeledExample[]): Promise<RowResult[]> => {
      const results: (RowResult | undefined)[] = rows.map((row) => rowResults.get(row)?.find((e) => e.sha === onnxSha256 && e.label === row.label)?.result);
      const missing = rows.filter((_, i) => results[i] === undefined);
      if (missing.length > 0) {
        model ??= await loadVerifiedModel(onnx, onnxSha256, runtime);
        const predictions = await model.predict(packFeatures(missing, model.numFeatures));
        const labels = missing.map((row) => row.label);
        const losses = computeLosses(predictions, labels);
        let k = 0;
        rows.forEach((row, i) => {
          if (results[i] !== undefined) return;
          const result = { predicted: predictions.labels[k], loss: losses[k] };
          k++;
          results[i] = result;
          const history = (rowResults.get(row) ?? []).filter((e) => e.sha !== onnxSha256).slice(-1);
          rowResults.set(row, [...history, { sha: onnxSha256, label: row.label, result }]);
        });
      }
      return results as RowResult[];
    };
    const accuracy = (rows: readonly LabeledExample[], results: RowResult[]) =>
      rows.length === 0 ? 0 : results.filter((r, i) => r.predicted === rows[i].label).length / rows.length;
    const retain = await run(sets.retain);
    const forget = await run(sets.forget);
    const evaluation: ModelEvaluation = {
      retainAccuracy: accuracy(sets.retain, retain),
      forgetAccuracy: accuracy(sets.forget, forget),
    };
    if (sets.test && sets.test.length > 0) {
      const test = await run(sets.test);
      evaluation.testAccuracy = accuracy(sets.test, test);
      evaluation.membershipAuc = computeMembershipAuc(
        forget.map((r) => r.loss),
        test.map((r) => r.loss),
      );
    }
    return evaluation;
  } finally {
    await model?.release();
  }
}

export function evaluationToJson(evaluation: ModelEvaluation): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {
    retainAccuracy: evaluation.retainAccuracy,
    forgetAccuracy: evaluation.forgetAccuracy,
  };
  if (evaluation.testAccuracy !== undefined) out.testAccuracy = evaluation.testAccuracy;
  if (evaluation.membershipAuc !== undefined) out.membershipAuc = evaluation.membershipAuc;
  return out;
}

/** How many retained (or training) samples evaluations use by default; the forget and test sets are used whole. */
export const DEFAULT_EVALUATION_LIMIT = 1000;

/**
 * At most `limit` samples, chosen by rank of SHA-256("lethe-eval|" seed 0x00 externalId): a fixed subset that
 * depends only on the seed and the ids, so the subset of the retained samples after forgetting is the one a
 * from-scratch training on them would pick.
 */
export function selectEvaluationSamples<T extends LabeledExample>(samples: readonly T[], seed: string, limit: number): T[] {
  if (samples.length <= limit) return [...samples];
  const prefix = `lethe-eval|${seed}\u0000`;
  const ranked = samples.map((sample) => {
    const key = hashSampleKey(sample, prefix);
    return { sample, key, k0: key.readUInt32BE(0), k1: key.readUInt32BE(4) };
  });
  ranked.sort((a, b) => a.k0 - b.k0 || a.k1 - b.k1 || compareKeys(a.key, b.key));
  return ranked.slice(0, limit).map((r) => r.sample);
}

/** The MODEL_PUBLISHED metrics: training (or retained) accuracy on the evaluation subset, and test accuracy. */
export function buildPublishedMetrics(evaluation: ModelEvaluation, sampleCount: number, evaluatedCount: number, testCount: number): { [key: string]: JsonValue } {
  const metrics: { [key: string]: JsonValue } = {
    samples: sampleCount,
    trainAccuracy: evaluation.retainAccuracy,
    trainAccuracySamples: evaluatedCount,
  };
  if (evaluation.testAccuracy !== undefined) {
    metrics.testAccuracy = evaluation.testAccuracy;
    metrics.testSamples = testCount;
  }
  return metrics;
}
