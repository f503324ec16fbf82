import { LayerSizes, weightShapes } from '../architecture';
import { GraphBuilder } from '../onnx-graph';
import { weightNames } from '../step-graph';

/** The teacher's inputs: t_w0, t_b0, ... */
export function teacherNames(layers: LayerSizes): string[] {
  return weightNames(layers).map((name) => `t_${name}`);
}

/**
 * One SGD step of approximate unlearning as one ONNX graph with static shapes (R rows), for a dense ReLU network
 * (the student) distilled from a fixed copy of itself (the teacher):
 *   inputs  (w0, b0, ..., t_w0, t_b0, ..., x float[R, features], y float[R, classes] one-hot,
 *            ce_scale float[R, 1], kd_scale float[R, 1])
 *   outputs (w0_next, b0_next, ..., loss float[])
 * Per row, the gradient at the student's logits z is
 *   dz = (softmax(z) - y) * ce_scale + (softmax(z / T) - softmax(z_t / T)) * kd_scale
 * the first term that of the cross-entropy, the second that of T^2 KL(teacher_T || student_T) (Hinton's
 * distillation loss) with its factor T folded into kd_scale by the caller (d/dz of T^2 KL at temperature T is
 * T (p_T - q_T)). A negative
 * scale ascends: NegGrad+ gives forgotten rows -(1 - beta) / |batch| on the cross-entropy, SCRUB's max-steps give
 * forgotten rows -T / |batch| on the divergence. Rows whose scales are 0 (padding) contribute nothing.
 * loss = sum over rows of ce_scale * CE + kd_scale * T * KL (a sum, for divergence checks).
 * The backward pass and the update are the training step's (step-graph.ts): dW = h^T dz, db = sum_rows dz,
 * dh = dz W^T masked by (z > 0), w_next = (1 - lr * weightDecay) w - lr dW, b_next = b - lr db.
 */
export function buildUnlearnStepGraph(layers: LayerSizes, rows: number, learningRate: number, weightDecay: number, temperature: number): Uint8Array {
  if (layers.length < 2) throw new RangeError(`a network needs at least 2 layer sizes, got ${layers.length}`);
  const g = new GraphBuilder('lethe_unlearn_step');
  const names = weightNames(layers);
  const teacher = teacherNames(layers);
  const shapes = weightShapes(layers);
  names.forEach((name, i) => g.floatInput(name, shapes[i]));
  teacher.forEach((name, i) => g.floatInput(name, shapes[i]));
  const classes = layers[layers.length - 1];
  g.floatInput('x', [rows, layers[0]]);
  g.floatInput('y', [rows, classes]);
  g.floatInput('ce_scale', [rows, 1]);
  g.floatInput('kd_scale', [rows, 1]);
  const lr = g.floatConstant('lr', [], new Float32Array([learningRate]));
  const inverseT = g.floatConstant('inverse_temperature', [], new Float32Array([1 / temperature]));
  const temperatureConstant = g.floatConstant('temperature', [], new Float32Array([temperature]));
  const axis0 = g.int64Constant('axis0', [1], [0]);
  const depth = layers.length - 1;

  const forward = (prefix: string) => {
    const activations = ['x'];
    const preActivations: string[] = [];
    for (let i = 0; i < depth; i++) {
      const z = g.op('Gemm', [activations[i], `${prefix}w${i}`, `${prefix}b${i}`], {}, `${prefix}z${i}`);
      preActivations.push(z);
      if (i + 1 < depth) activations.push(g.op('Relu', [z], {}, `${prefix}h${i + 1}`));
    }
    return { activations, preActivations, logits: preActivations[depth - 1] };
  };
  const student = forward('');
  const teacherLogits = forward('t_').logits;
  const logP = g.op('LogSoftmax', [student.logits], { axis: { int: 1 } }, 'log_p');
  const p = g.op('Exp', [logP], {}, 'p');
  const logPT = g.op('LogSoftmax', [g.op('Mul', [student.logits, inverseT], {}, 'z_over_t')], { axis: { int: 1 } }, 'log_p_t');
  const pT = g.op('Exp', [logPT], {}, 'p_t');
  const logQT = g.op('LogSoftmax', [g.op('Mul', [teacherLogits, inverseT], {}, 'teacher_z_over_t')], { axis: { int: 1 } }, 'teacher_log_p_t');
  const qT = g.op('Exp', [logQT], {}, 'teacher_p_t');

  // loss = sum(ce_scale * -sum_c y log p) + sum(kd_scale * T * sum_c q (log q - log p_T))
  const ceRows = g.op('Neg', [g.op('ReduceSum', [g.op('Mul', ['y', logP], {}, 'y_log_p'), g.int64Constant('axis1_ce', [1], [1])], { keepdims: { int: 1 } }, 'sum_y_log_p')], {}, 'ce_rows');
  const klRows = g.op(
    'ReduceSum',
    [g.op('Mul', [qT, g.op('Sub', [logQT, logPT], {}, 'log_ratio')], {}, 'q_log_ratio'), g.int64Constant('axis1_kd', [1], [1])],
    { keepdims: { int: 1 } },
    'kl_rows',
  );
  const rowLoss = g.op(
    'Add',
    [g.op('Mul', [ceRows, 'ce_scale'], {}, 'scaled_ce'), g.op('Mul', [g.op('Mul', [klRows, 'kd_scale'], {}, 'scaled_kl'), temperatureConstant], {}, 'scaled_kl_t')],
    {},
    'row_loss',
  );
  const loss = g.op('ReduceSum', [rowLoss], { keepdims: { int: 0 } }, 'loss');

  let dz = g.op(
    'Add',
    [
      g.op('Mul', [g.op('Sub', [p, 'y'], {}, 'p_minus_y'), 'ce_scale'], {}, 'dz_ce'),
      g.op('Mul', [g.op('Sub', [pT, qT], {}, 'p_t_minus_q_t'), 'kd_scale'], {}, 'dz_kd'),
    ],
    {},
    `dz${depth - 1}`,
  );
  const updated = new Map<string, string>();
  for (let i = depth - 1; i >= 0; i--) {
    updated.set(`w${i}`, g.op('Gemm', [student.activations[i], dz, `w${i}`], { transA: { int: 1 }, alpha: -Math.fround(learningRate), beta: Math.fround(1 - learningRate * weightDecay) }, `w${i}_next`));
    const db = g.op('ReduceSum', [dz, axis0], { keepdims: { int: 0 } }, `db${i}`);
    if (i > 0) {
      const dh = g.op('Gemm', [dz, `w${i}`], { transB: { int: 1 } }, `dh${i}`);
      const zero = g.floatConstant(`zero${i}`, [], new Float32Array([0]));
      const mask = g.op('Greater', [student.preActivations[i - 1], zero], {}, `relu_mask${i - 1}`);
      dz = g.op('Where', [mask, dh, zero], {}, `dz${i - 1}`);
    }
    updated.set(`b${i}`, g.op('Sub', [`b${i}`, g.op('Mul', [lr, db], {}, `lr_db${i}`)], {}, `b${i}_next`));
  }
  names.forEach((name, i) => g.floatOutput(updated.get(name) as string, shapes[i]));
  g.floatOutput(loss, []);
  return g.encode('One approximate-unlearning SGD step: cross-entropy and distillation from a teacher, each row scaled (negative scales ascend).');
}
