import { GraphBuilder } from '../onnx-graph';
import { LayerSizes, weightShapes } from '../architecture';
import { weightNames } from '../step-graph';

/** What a DP-SGD step graph has as constants. */
export interface DpStepConstants {
  learningRate: number;
  weightDecay: number;
  /** C: each example's whole gradient (every layer, biases included) is scaled to an L2 norm of at most C. */
  clipNorm: number;
  /** σ: the Gaussian noise added to the clipped sum has standard deviation σC per coordinate. */
  noiseMultiplier: number;
  /**
   * The constant the noisy sum is divided by: the expected batch size, fixed by the config, never the
   * number of rows a step happened to sample (that count depends on the data).
   */
  denominator: number;
}

/**
 * `accumulate` adds the batch's clipped per-example gradients to the running sums fed in (acc_*), for a
 * Poisson batch larger than the graph's rows; `update` adds them too, then the noise, and takes the step.
 */
export type DpGraphMode = 'accumulate' | 'update';

/** The names of a DP graph's gradient-sum inputs (acc_w0, acc_b0, ...) and noise inputs (noise_w0, ...). */
export function accumulatorNames(layers: LayerSizes): string[] {
  return weightNames(layers).map((name) => `acc_${name}`);
}

export function noiseNames(layers: LayerSizes): string[] {
  return weightNames(layers).map((name) => `noise_${name}`);
}

/**
 * One DP-SGD step (Abadi et al. 2016) of a dense ReLU network with softmax cross-entropy as one ONNX graph
 * with static shapes, B rows:
 *   inputs  (w0, b0, ..., x float[B, features], y float[B, classes] one-hot, mask float[B, 1],
 *            acc_w0, acc_b0, ... (clipped-gradient sums so far; zeros for a batch that fits),
 *            update only: noise_w0, noise_b0, ... (standard normals, drawn by the caller from its seeded PRNG))
 *   outputs accumulate: (acc_w0_next, ...), update: (w0_next, b0_next, ...); both then loss float[] (a sum).
 * mask is 1 for the rows the step sampled and 0 for padding rows, which then contribute nothing.
 *
 * Per-example gradients are never materialised. For example i, dz_l[i] is the gradient at layer l's
 * pre-activation and h_l[i] the layer's input; the example's gradient of W_l is the outer product
 * h_l[i] dz_l[i]^T, whose Frobenius norm is |h_l[i]| |dz_l[i]|, and of b_l it is dz_l[i]. So
 *   |g_i|^2 = sum_l |dz_l[i]|^2 (|h_l[i]|^2 + 1)
 * exactly, from row norms of tensors the backward pass has anyway. Each example's dz rows are scaled by
 * f_i = C / max(|g_i|, C) = min(1, C/|g_i|), which scales its whole gradient, so the clipped sum is
 * sum_W_l = acc_W_l + h_l^T (f * dz_l) and sum_b_l = acc_b_l + sum_rows(f * dz_l). The update then is
 *   W_next = (1 - lr * weightDecay) W - (lr / denominator) (sum_W + σC noise_W)   (no decay on biases).
 */
export function buildDpStepGraph(layers: LayerSizes, rows: number, constants: DpStepConstants, mode: DpGraphMode): Uint8Array {
  if (layers.length < 2) throw new RangeError(`a network needs at least 2 layer sizes, got ${layers.length}`);
  const g = new GraphBuilder(mode === 'update' ? 'lethe_dp_sgd_step' : 'lethe_dp_sgd_accumulate');
  const names = weightNames(layers);
  const shapes = weightShapes(layers);
  names.forEach((name, i) => g.floatInput(name, shapes[i]));
  const classes = layers[layers.length - 1];
  g.floatInput('x', [rows, layers[0]]);
  g.floatInput('y', [rows, classes]);
  g.floatInput('mask', [rows, 1]);
  names.forEach((name, i) => g.floatInput(`acc_${name}`, shapes[i]));
  if (mode === 'update') names.forEach((name, i) => g.floatInput(`noise_${name}`, shapes[i]));
  const scalar = (name: string, value: number) => g.floatConstant(name, [], new Float32Array([value]));
  const axis0 = g.int64Constant('axis0', [1], [0]);
  const axis1 = g.int64Constant('axis1', [1], [1]);
  const one = scalar('one', 1);
  const zero = scalar('zero', 0);
  const clip = scalar('clip_norm', constants.clipNorm);

  const depth = layers.length - 1;
  const activations: string[] = ['x'];
  const preActivations: string[] = [];
  for (let i = 0; i < depth; i++) {
    const z = g.op('Gemm', [activations[i], `w${i}`, `b${i}`], {}, `z${i}`);
    preActivations.push(z);
    if (i + 1 < depth) activations.push(g.op('Relu', [z], {}, `h${i + 1}`));
  }
  const logProbabilities = g.op('LogSoftmax', [preActivations[depth - 1]], { axis: { int: 1 } }, 'log_p');
  const probabilities = g.op('Exp', [logProbabilities], {}, 'p');
  const yLogP = g.op('Mul', [g.op('Mul', ['y', logProbabilities], {}, 'y_log_p'), 'mask'], {}, 'masked_y_log_p');
  const loss = g.op('Neg', [g.op('ReduceSum', [yLogP], { keepdims: { int: 0 } }, 'sum_y_log_p')], {}, 'loss');

  // Per-example backward pass (no 1/n: each row is one example's own gradient), padding rows masked to 0.
  const dz: string[] = new Array<string>(depth);
  dz[depth - 1] = g.op('Mul', [g.op('Sub', [probabilities, 'y'], {}, 'p_minus_y'), 'mask'], {}, `dz${depth - 1}`);
  for (let i = depth - 1; i > 0; i--) {
    const dh = g.op('Gemm', [dz[i], `w${i}`], { transB: { int: 1 } }, `dh${i}`);
    const active = g.op('Greater', [preActivations[i - 1], zero], {}, `relu_mask${i - 1}`);
    dz[i - 1] = g.op('Where', [active, dh, zero], {}, `dz${i - 1}`);
  }
  // |g_i|^2 = sum_l |dz_l[i]|^2 (|h_l[i]|^2 + 1), each term a [B, 1] column.
  let squaredNorm = '';
  for (let i = 0; i < depth; i++) {
    const rowSquares = (input: string, name: string) =>
      g.op('ReduceSum', [g.op('Mul', [input, input], {}, `${name}_sq`), axis1], { keepdims: { int: 1 } }, `${name}_row_sq`);
    const dzSquared = rowSquares(dz[i], `dz${i}`);
    const hSquaredPlusOne = g.op('Add', [rowSquares(activations[i], `h${i}_in`), one], {}, `h${i}_in_row_sq_plus_1`);
    const term = g.op('Mul', [dzSquared, hSquaredPlusOne], {}, `grad_sq${i}`);
    squaredNorm = i === 0 ? term : g.op('Add', [squaredNorm, term], {}, `grad_sq_to${i}`);
  }
  const norm = g.op('Sqrt', [squaredNorm], {}, 'grad_norm');
  const factor = g.op('Div', [clip, g.op('Max', [norm, clip], {}, 'norm_or_clip')], {}, 'clip_factor');

  const sums = new Map<string, string>();
  for (let i = 0; i < depth; i++) {
    const clipped = g.op('Mul', [dz[i], factor], {}, `dz${i}_clipped`);
    sums.set(`w${i}`, g.op('Gemm', [activations[i], clipped, `acc_w${i}`], { transA: { int: 1 } }, `sum_w${i}`));
    sums.set(`b${i}`, g.op('Add', [`acc_b${i}`, g.op('ReduceSum', [clipped, axis0], { keepdims: { int: 0 } }, `batch_b${i}`)], {}, `sum_b${i}`));
  }
  if (mode === 'accumulate') {
    names.forEach((name, i) => g.floatOutput(g.op('Identity', [sums.get(name) as string], {}, `acc_${name}_next`), shapes[i]));
  } else {
    const noiseStd = scalar('noise_std', constants.noiseMultiplier * constants.clipNorm);
    const stepSize = scalar('lr_over_denominator', constants.learningRate / constants.denominator);
    const decay = constants.weightDecay > 0 ? scalar('decay', 1 - constants.learningRate * constants.weightDecay) : undefined;
    names.forEach((name, i) => {
      const noisy = g.op('Add', [sums.get(name) as string, g.op('Mul', [`noise_${name}`, noiseStd], {}, `scaled_noise_${name}`)], {}, `noisy_${name}`);
      const step = g.op('Mul', [noisy, stepSize], {}, `step_${name}`);
      const kept = decay && name.startsWith('w') ? g.op('Mul', [name, decay], {}, `decayed_${name}`) : name;
      g.floatOutput(g.op('Sub', [kept, step], {}, `${name}_next`), shapes[i]);
    });
  }
  g.floatOutput(loss, []);
  return g.encode(
    mode === 'update'
      ? 'One DP-SGD step: per-example clipping from row norms, Gaussian noise fed in, divided by the expected batch size.'
      : 'Clipped per-example gradient sums of a batch, added to the sums fed in (a Poisson batch larger than the graph).',
  );
}
