import { JsonValue } from './events';
import { computeLosses, computeMembershipAuc } from './metrics';
import { RuntimeOptions } from './runtime';
import { LabeledExample, packFeatures } from './samples';
import { compareKeys, hashSampleKey } from './hash';
import { loadVerifiedModel } from './serve';

export interface ModelEvaluation {
  retainAccuracy: number;
  forgetAccuracy: number;
  /** Present when a test set was given. */
  testAccuracy?: number;
  /** Loss-threshold membership-inference AUC, forgotten vs held-out test samples; present with a test set. */
  membershipAuc?: number;
}

/** What the published model said about one row: its predicted label and the cross-entropy of the true label. */
export interface RowResult {
  predicted: number;
  loss: number;
}

export interface EvaluationSets {
  retain: readonly LabeledExample[];
  forget: readonly LabeledExample[];
  test?: readonly LabeledExample[];
}

/**
 * Accuracy on the retain, forget and test sets, and the membership-inference AUC of forgotten vs test samples,
 * by running the published ONNX file itself (a fresh session, nothing cached): the independent check of the
 * member-by-member evaluation the engine publishes with (ensemble-evaluator.ts).
 */
export async function evaluateModel(
  onnx: Uint8Array,
  onnxSha256: string,
  sets: EvaluationSets,
  runtime?: RuntimeOptions,
): Promise<ModelEvaluation> {
  const model = await loadVerifiedModel(onnx, onnxSha256, runtime);
  try {
    const run = async (rows: readonly LabeledExample[]): Promise<RowResult[]> => {
      if (rows.length === 0) return [];
      const predictions = await model.predict(packFeatures(rows, model.numFeatures));
      const losses = computeLosses(
        predictions,
        rows.map((row) => row.label),
      );
      return rows.map((_, i) => ({ predicted: predictions.labels[i], loss: losses[i] }));
    };
    return summarizeEvaluation(sets, await run(sets.retain), await run(sets.forget), sets.test ? await run(sets.test) : []);
  } finally {
    await model.release();
  }
}

/** Turns per-row results of the three sets into accuracies and the membership AUC (forget vs test losses). */
export function summarizeEvaluation(
  sets: EvaluationSets,
  retain: readonly RowResult[],
  forget: readonly RowResult[],
  test: readonly RowResult[],
): ModelEvaluation {
  const accuracy = (rows: readonly LabeledExample[], results: readonly RowResult[]) =>
    rows.length === 0 ? 0 : results.filter((r, i) => r.predicted === rows[i].label).length / rows.length;
  const evaluation: ModelEvaluation = {
    retainAccuracy: accuracy(sets.retain, retain),
    forgetAccuracy: accuracy(sets.forget, forget),
  };
  if (sets.test && sets.test.length > 0) {
    evaluation.testAccuracy = accuracy(sets.test, test);
    evaluation.membershipAuc = computeMembershipAuc(
      forget.map((r) => r.loss),
      test.map((r) => r.loss),
    );
  }
  return evaluation;
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
 * The head of the evaluation ranking of recent sample arrays: enough to derive the survivors' selection after
 * forgetting without ranking them again (the head shrinks by what is forgotten from it; when it gets shorter
 * than the limit, the next selection ranks everything again).
 */
const rankings = new WeakMap<readonly LabeledExample[], { seed: string; head: readonly LabeledExample[] }>();
const HEAD_FACTOR = 4;

/**
 * At most `limit` samples, chosen by rank of SHA-256("lethe-eval|" seed 0x00 externalId): a fixed subset that
 * depends only on the seed and the ids, so the subset of the retained samples after forgetting is the one a
 * from-scratch training on them would pick. `derivedFrom` says that `samples` are the samples of an earlier
 * call minus `removed` (same objects, same order): their ranking is then the earlier one without them, and
 * nothing is hashed or sorted again.
 */
export function selectEvaluationSamples<T extends LabeledExample>(
  samples: readonly T[],
  seed: string,
  limit: number,
  derivedFrom?: { samples: readonly T[]; removed: ReadonlySet<T> },
): T[] {
  if (samples.length <= limit) return [...samples];
  const earlier = derivedFrom && rankings.get(derivedFrom.samples);
  let head: readonly T[] | undefined;
  if (earlier && earlier.seed === seed && samples.length === derivedFrom.samples.length - derivedFrom.removed.size) {
    // Removing samples moves no other sample's rank: the survivors of the earlier head head the new ranking.
    const survivors = (earlier.head as readonly T[]).filter((sample) => !derivedFrom.removed.has(sample));
    if (survivors.length >= limit) head = survivors;
  }
  head ??= rankEvaluationSamples(samples, seed).slice(0, HEAD_FACTOR * limit);
  rankings.set(samples, { seed, head });
  return head.slice(0, limit);
}

function rankEvaluationSamples<T extends LabeledExample>(samples: readonly T[], seed: string): T[] {
  const prefix = `lethe-eval|${seed}\u0000`;
  const ranked = samples.map((sample) => {
    const key = hashSampleKey(sample, prefix);
    return { sample, key, k0: key.readUInt32BE(0), k1: key.readUInt32BE(4) };
  });
  ranked.sort((a, b) => a.k0 - b.k0 || a.k1 - b.k1 || compareKeys(a.key, b.key));
  return ranked.map((r) => r.sample);
}

/** The MODEL_PUBLISHED metrics: training (or retained) accuracy on the evaluation subset, and test accuracy. */
export function buildPublishedMetrics(
  evaluation: ModelEvaluation,
  sampleCount: number,
  evaluatedCount: number,
  testCount: number,
): { [key: string]: JsonValue } {
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
