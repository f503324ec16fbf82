/**
 * LiRA's statistics (Carlini et al., "Membership Inference Attacks From First Principles", IEEE S&P 2022):
 * the logit-scaled confidence on the true label, per-example Gaussian fits of the scores that shadow models
 * trained with (IN) and without (OUT) each example give it, and the likelihood ratio of an observed score.
 */

/** The smallest probability the scaled logit takes (LiRA's reference code adds 1e-45 before the logarithms). */
const PROBABILITY_FLOOR = 1e-45;
/** A fitted standard deviation never goes below this (a model pinned at full confidence gives identical scores). */
const STD_FLOOR = 1e-6;
/**
 * From this many shadow models on, each example gets its own variances; below it, one IN and one OUT variance
 * pooled over all examples (the paper's fixed-variance variant, which it finds stronger with fewer than 64).
 */
export const PER_EXAMPLE_VARIANCE_FROM = 64;

/**
 * log p(y) - log sum_{c != y} p(c) for row `row` of row-major probabilities: the logit of the model's confidence
 * on the true label, which LiRA finds close to Gaussian across models where the raw confidence is not. The sum
 * is taken over the other classes, not 1 - p(y), so a confidence that rounds to 1 in float32 still scores.
 */
export function scaledLogit(probabilities: Float32Array, row: number, classes: number, label: number): number {
  const base = row * classes;
  let wrong = 0;
  for (let c = 0; c < classes; c++) if (c !== label) wrong += probabilities[base + c];
  return Math.log(Math.max(probabilities[base + label], PROBABILITY_FLOOR)) - Math.log(Math.max(wrong, PROBABILITY_FLOOR));
}

export type VarianceKind = 'fixed' | 'per-example';

/** Per example: the mean and standard deviation of its IN and of its OUT shadow scores. */
export interface GaussianFits {
  variance: VarianceKind;
  meanIn: Float64Array;
  stdIn: Float64Array;
  meanOut: Float64Array;
  stdOut: Float64Array;
}

/**
 * Fits N(meanIn, stdIn) and N(meanOut, stdOut) per example from `scores[k * examples + j]` (shadow k, example j)
 * and `inclusion` (same layout, 1 where shadow k trained on example j). Every example needs at least one IN and
 * one OUT score. With fewer than PER_EXAMPLE_VARIANCE_FROM shadows the variances are pooled: each score's
 * deviation from its own example's mean, over all examples (the paper's reference code takes the spread of all
 * scores together, which also counts how far the examples' means lie apart; the pooled one does not).
 */
export function fitGaussians(scores: Float64Array, inclusion: Uint8Array, shadows: number, examples: number): GaussianFits {
  const variance: VarianceKind = shadows >= PER_EXAMPLE_VARIANCE_FROM ? 'per-example' : 'fixed';
  const sums = [new Float64Array(examples), new Float64Array(examples)]; // [OUT, IN]
  const counts = [new Int32Array(examples), new Int32Array(examples)];
  for (let k = 0; k < shadows; k++)
    for (let j = 0; j < examples; j++) {
      const side = inclusion[k * examples + j];
      sums[side][j] += scores[k * examples + j];
      counts[side][j]++;
    }
  const means = sums.map((sum, side) =>
    sum.map((s, j) => {
      if (counts[side][j] === 0) throw new RangeError(`example ${j} has no ${side ? 'IN' : 'OUT'} shadow score`);
      return s / counts[side][j];
    }),
  );
  const squares = [new Float64Array(examples), new Float64Array(examples)];
  for (let k = 0; k < shadows; k++)
    for (let j = 0; j < examples; j++) {
      const side = inclusion[k * examples + j];
      const d = scores[k * examples + j] - means[side][j];
      squares[side][j] += d * d;
    }
  const stds = squares.map((square, side) => {
    if (variance === 'fixed') {
      const total = square.reduce((a, b) => a + b, 0);
      const freedom = counts[side].reduce((a, n) => a + Math.max(0, n - 1), 0);
      return new Float64Array(examples).fill(Math.max(STD_FLOOR, Math.sqrt(freedom > 0 ? total / freedom : 0)));
    }
    return square.map((s, j) => Math.max(STD_FLOOR, Math.sqrt(counts[side][j] > 1 ? s / (counts[side][j] - 1) : 0)));
  });
  return { variance, meanIn: means[1], stdIn: stds[1], meanOut: means[0], stdOut: stds[0] };
}

/** log N(score; IN fit) - log N(score; OUT fit) per example: higher means more likely a member. */
export function likelihoodRatios(observed: Float64Array, fits: GaussianFits): Float64Array {
  return observed.map(
    (score, j) => logNormal(score, fits.meanIn[j], fits.stdIn[j]) - logNormal(score, fits.meanOut[j], fits.stdOut[j]),
  );
}

function logNormal(x: number, mean: number, std: number): number {
  const z = (x - mean) / std;
  return -0.5 * z * z - Math.log(std) - 0.5 * Math.log(2 * Math.PI);
}
