import { JsonValue } from './events';
import { UnlearningError } from './errors';
import { LabeledExample, packFeatures } from './samples';
import { loadVerifiedModel } from './serve';
import { RuntimeOptions } from './runtime';

/** One group of the protected column on the holdout. */
export interface GroupFigures {
  group: number;
  count: number;
  accuracy: number;
}

/**
 * Fairness of a model's predictions on the holdout, by the group id in its protected column:
 * - per-group accuracy;
 * - demographic parity difference: the largest gap between two groups' rates of predicting a class
 *   (max over classes c of max_g P(pred = c | g) - min_g P(pred = c | g); for two classes, the usual gap in
 *   positive rates);
 * - equalized odds difference: the largest gap between two groups' true- or false-positive rates of a class
 *   (max over c of the larger of the TPR_c and FPR_c gaps; for two classes, the usual definition). A group with
 *   no row of a class (or none outside it) has no TPR (FPR) for that class and is left out of that gap.
 */
export interface FairnessFigures {
  protectedFeature: number;
  groups: GroupFigures[];
  accuracyGap: number;
  demographicParityDifference: number;
  equalizedOddsDifference: number;
}

/** The fairness figures of `predicted` labels for `rows` (true labels and the group in column `protectedFeature`). */
export function computeFairness(rows: readonly LabeledExample[], predicted: ArrayLike<number>, protectedFeature: number, numClasses: number): FairnessFigures {
  if (predicted.length !== rows.length) throw new RangeError(`${predicted.length} predictions for ${rows.length} rows`);
  const byGroup = new Map<number, number[]>();
  rows.forEach((row, i) => {
    const group = Number(row.features[protectedFeature]);
    if (!byGroup.has(group)) byGroup.set(group, []);
    byGroup.get(group)!.push(i);
  });
  const groups = [...byGroup.keys()].sort((a, b) => a - b);
  const spread = (values: number[]) => (values.length < 2 ? 0 : Math.max(...values) - Math.min(...values));
  const figures: GroupFigures[] = groups.map((group) => {
    const members = byGroup.get(group)!;
    return { group, count: members.length, accuracy: members.filter((i) => predicted[i] === rows[i].label).length / members.length };
  });
  let dpd = 0;
  let eod = 0;
  for (let c = 0; c < numClasses; c++) {
    const rates: number[] = [];
    const tprs: number[] = [];
    const fprs: number[] = [];
    for (const group of groups) {
      const members = byGroup.get(group)!;
      rates.push(members.filter((i) => predicted[i] === c).length / members.length);
      const positives = members.filter((i) => rows[i].label === c);
      const negatives = members.filter((i) => rows[i].label !== c);
      if (positives.length > 0) tprs.push(positives.filter((i) => predicted[i] === c).length / positives.length);
      if (negatives.length > 0) fprs.push(negatives.filter((i) => predicted[i] === c).length / negatives.length);
    }
    dpd = Math.max(dpd, spread(rates));
    eod = Math.max(eod, spread(tprs), spread(fprs));
  }
  return {
    protectedFeature,
    groups: figures,
    accuracyGap: spread(figures.map((g) => g.accuracy)),
    demographicParityDifference: dpd,
    equalizedOddsDifference: eod,
  };
}

/** The figures of a published ONNX file on `rows` (its hash checked as it is loaded). */
export async function measureFairness(
  onnx: Uint8Array,
  onnxSha256: string,
  rows: readonly LabeledExample[],
  protectedFeature: number,
  runtime?: RuntimeOptions,
): Promise<FairnessFigures> {
  if (rows.length === 0) throw new UnlearningError('INSUFFICIENT_DATA', 'fairness is measured on the holdout, and it is empty (set evaluation.holdoutFraction)');
  const model = await loadVerifiedModel(onnx, onnxSha256, runtime);
  try {
    if (protectedFeature < 0 || protectedFeature >= model.numFeatures)
      throw new UnlearningError('INVALID_REQUEST', `protectedFeature ${protectedFeature} is beyond the model's ${model.numFeatures} columns`);
    const out = await model.predict(packFeatures(rows, model.numFeatures));
    return computeFairness(rows, out.labels, protectedFeature, out.classes);
  } finally {
    await model.release();
  }
}

export function fairnessToJson(figures: FairnessFigures): { [key: string]: JsonValue } {
  return {
    protectedFeature: figures.protectedFeature,
    groups: figures.groups.map((g) => ({ group: g.group, count: g.count, accuracy: g.accuracy })),
    accuracyGap: figures.accuracyGap,
    demographicParityDifference: figures.demographicParityDifference,
    equalizedOddsDifference: figures.equalizedOddsDifference,
  };
}

/**
 * The fairness figures of a published file on the test set, as JSON, when the dataset declares a protected
 * column and there is a test set; undefined otherwise.
 */
export async function fairnessOfPublished(
  published: { onnx: Uint8Array; onnxSha256: string },
  testSet: readonly LabeledExample[] | undefined,
  protectedFeature: number | undefined,
): Promise<{ [key: string]: JsonValue } | undefined> {
  if (protectedFeature === undefined || !testSet || testSet.length === 0) return undefined;
  return fairnessToJson(await measureFairness(published.onnx, published.onnxSha256, testSet, protectedFeature));
}
