import { GraphBuilder } from './onnx-graph';
import { LayerSizes, weightShapes } from './architecture';

/** Names of the step graph's inputs and outputs. */
export function weightNames(layers: LayerSizes): string[] {
  const names: string[] = [];
  for (let i = 0; i + 1 < layers.length; i++) names.push(`w${i}`, `b${i}`);
  return names;
}

/**
 * One SGD step as one ONNX graph, for a fixed batch size B (static shapes: onnxruntime plans memory once;
 * a changing batch shape halves its throughput):
 *   inputs  (w0, b0, ..., x float[B, features], y float[B, classes] one-hot, row_scale float[B, 1])
 *   outputs (w0_next, b0_next, ..., loss float[])
 * row_scale is 1/n for the n real rows and 0 for padding rows (x = 0, y = 0), so a short last batch is
 * padded to B without changing what it learns.
 * Forward: Gemm + Relu per hidden layer, Gemm to logits, LogSoftmax; loss = -sum(y * log p * row_scale).
 * Backward written out by hand: dlogits = (p - y) * row_scale; dW = h^T dZ; db = sum_rows dZ;
 * dh = dZ W^T masked by (z > 0). The learning rate is a constant of the graph, so the weight update is
 * fused into the gradient's Gemm: w_next = Gemm(h, dZ, w; transA, alpha = -lr, beta = 1 - lr * weightDecay);
 * b_next = b - lr * db.
 */
export function buildStepGraph(layers: LayerSizes, batchSize: number, learningRate: number, weightDecay = 0): Uint8Array {
  return stepGraph(layers, batchSize, learningRate, weightDecay).encode(
    'One SGD step of a dense ReLU network with softmax cross-entropy; gradients written out by hand.',
  );
}

/**
 * Several SGD steps in one run: a Scan over the steps whose body is buildStepGraph's graph, node for node
 * (so each step computes the very bits one run of the step graph computes):
 *   inputs  (w0_start, b0_start, ..., xs float[K, B, features], ys float[K, B, classes], row_scales float[K, B, 1])
 *   outputs (w0_end, b0_end, ..., losses float[K])
 * K, the number of steps, is given per run. The weights stay inside onnxruntime from one step to the next:
 * one run, one copy of the final weights out, instead of one of each per step.
 */
export function buildScanStepGraph(layers: LayerSizes, batchSize: number, learningRate: number, weightDecay = 0): Uint8Array {
  const body = stepGraph(layers, batchSize, learningRate, weightDecay).toGraph();
  const g = new GraphBuilder('lethe_sgd_steps');
  const names = weightNames(layers);
  const shapes = weightShapes(layers);
  names.forEach((name, i) => g.floatInput(`${name}_start`, shapes[i]));
  g.floatInput('xs', ['steps', batchSize, layers[0]]);
  g.floatInput('ys', ['steps', batchSize, layers[layers.length - 1]]);
  g.floatInput('row_scales', ['steps', batchSize, 1]);
  g.ops(
    'Scan',
    [...names.map((name) => `${name}_start`), 'xs', 'ys', 'row_scales'],
    [...names.map((name) => `${name}_end`), 'losses'],
    { body: { graph: body }, num_scan_inputs: { int: 3 } },
  );
  names.forEach((name, i) => g.floatOutput(`${name}_end`, shapes[i]));
  g.floatOutput('losses', ['steps']);
  return g.encode('SGD steps of a dense ReLU network with softmax cross-entropy: a Scan of the one-step graph.');
}

function stepGraph(layers: LayerSizes, batchSize: number, learningRate: number, weightDecay: number): GraphBuilder {
  if (layers.length < 2) throw new RangeError(`a network needs at least 2 layer sizes, got ${layers.length}`);
  const g = new GraphBuilder('lethe_sgd_step');
  const names = weightNames(layers);
  const shapes = weightShapes(layers);
  names.forEach((name, i) => g.floatInput(name, shapes[i]));
  const features = layers[0];
  const classes = layers[layers.length - 1];
  g.floatInput('x', [batchSize, features]);
  g.floatInput('y', [batchSize, classes]);
  g.floatInput('row_scale', [batchSize, 1]);
  const lr = g.floatConstant('lr', [], new Float32Array([learningRate]));
  const axis0 = g.int64Constant('axis0', [1], [0]);

  const depth = layers.length - 1;
  const activations: string[] = ['x']; // h_0 = x, h_i = relu(z_i)
  const preActivations: string[] = [];
  for (let i = 0; i < depth; i++) {
    const z = g.op('Gemm', [activations[i], `w${i}`, `b${i}`], {}, `z${i}`);
    preActivations.push(z);
    if (i + 1 < depth) activations.push(g.op('Relu', [z], {}, `h${i + 1}`));
  }
  const logits = preActivations[depth - 1];
  const logProbabilities = g.op('LogSoftmax', [logits], { axis: { int: 1 } }, 'log_p');
  const probabilities = g.op('Exp', [logProbabilities], {}, 'p');
  const yLogP = g.op('Mul', [g.op('Mul', ['y', logProbabilities], {}, 'y_log_p'), 'row_scale'], {}, 'scaled_y_log_p');
  const loss = g.op('Neg', [g.op('ReduceSum', [yLogP], { keepdims: { int: 0 } }, 'mean_y_log_p')], {}, 'loss');

  let dz = g.op('Mul', [g.op('Sub', [probabilities, 'y'], {}, 'p_minus_y'), 'row_scale'], {}, `dz${depth - 1}`);
  const updated = new Map<string, string>();
  for (let i = depth - 1; i >= 0; i--) {
    // Read w_i for dh before its update is computed (both only read w_i; the graph has no in-place ops).
    updated.set(`w${i}`, g.op('Gemm', [activations[i], dz, `w${i}`], { transA: { int: 1 }, alpha: -Math.fround(learningRate), beta: Math.fround(1 - learningRate * weightDecay) }, `w${i}_next`));
    const db = g.op('ReduceSum', [dz, axis0], { keepdims: { int: 0 } }, `db${i}`);
    if (i > 0) {
      const dh = g.op('Gemm', [dz, `w${i}`], { transB: { int: 1 } }, `dh${i}`);
      const zero = g.floatConstant(`zero${i}`, [], new Float32Array([0]));
      const mask = g.op('Greater', [preActivations[i - 1], zero], {}, `relu_mask${i - 1}`);
      dz = g.op('Where', [mask, dh, zero], {}, `dz${i - 1}`);
    }
    updated.set(`b${i}`, g.op('Sub', [`b${i}`, g.op('Mul', [lr, db], {}, `lr_db${i}`)], {}, `b${i}_next`));
  }
  names.forEach((name, i) => g.floatOutput(updated.get(name) as string, shapes[i]));
  g.floatOutput(loss, []);
  return g;
}
