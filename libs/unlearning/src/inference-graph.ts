import { onnx } from 'onnx-proto';
import { GraphBuilder } from './onnx-graph';
import { UnlearningError } from './errors';
import { LayerSizes, Weights, weightShapes } from './architecture';
import { Aggregation } from './config';
import { keepVector } from './feature-mask';

export const INPUT_NAME = 'input';
export const PROBABILITIES_NAME = 'probabilities';
export const LABEL_NAME = 'label';

/** How the published graph prepares its input: as given, or projected onto the unit L2 ball (x / max(1, ||x||)). */
export type InputProjection = 'none' | 'unit-ball';

/**
 * The published model: a standard ONNX inference graph holding every member (shard) network as initializers.
 *   input          float[N, features]  (with `projection` 'unit-ball', each row is first divided by max(1, its L2 norm):
 *                                       certified removal trains on rows so projected)
 *   probabilities  float[N, classes]  mean of the members' softmax outputs ('mean'), or the fraction of votes ('vote')
 *   label          int64[N]           argmax of probabilities (lowest class index on ties)
 */
export function buildInferenceGraph(
  layers: LayerSizes,
  members: readonly Weights[],
  aggregation: Aggregation,
  projection: InputProjection = 'none',
  maskedFeatures: readonly number[] = [],
): Uint8Array {
  if (members.length === 0) throw new RangeError('an ensemble needs at least one member');
  const g = new GraphBuilder('lethe_ensemble');
  const features = layers[0];
  const classes = layers[layers.length - 1];
  g.floatInput(INPUT_NAME, ['N', features]);
  let input = INPUT_NAME;
  if (maskedFeatures.length > 0) {
    // Masked columns become +0 whatever they hold (Where, so no sign or NaN of theirs gets through).
    const keep = g.floatConstant('feature_keep', [features], keepVector(features, maskedFeatures));
    const kept = g.op('Greater', [keep, g.floatConstant('feature_half', [], new Float32Array([0.5]))], {}, 'feature_kept');
    input = g.op('Where', [kept, INPUT_NAME, g.floatConstant('feature_zero', [], new Float32Array([0]))], {}, 'masked_input');
  }
  if (projection === 'unit-ball') {
    const norm = g.op('ReduceL2', [INPUT_NAME], { axes: { ints: [1] }, keepdims: { int: 1 } }, 'input_norm');
    const one = g.floatConstant('one', [], new Float32Array([1]));
    input = g.op('Div', [INPUT_NAME, g.op('Max', [norm, one], {}, 'input_scale')], {}, 'projected_input');
  }
  const shapes = weightShapes(layers);
  const depth = layers.length - 1;
  const single = members.length === 1 && aggregation === 'mean';

  const memberOutputs: string[] = [];
  members.forEach((weights, m) => {
    let h = input;
    for (let i = 0; i < depth; i++) {
      const w = g.floatConstant(`m${m}_w${i}`, shapes[2 * i], weights[2 * i]);
      const b = g.floatConstant(`m${m}_b${i}`, shapes[2 * i + 1], weights[2 * i + 1]);
      const z = g.op('Gemm', [h, w, b], {}, `m${m}_z${i}`);
      h = i + 1 < depth ? g.op('Relu', [z], {}, `m${m}_h${i + 1}`) : z;
    }
    if (aggregation === 'mean') {
      memberOutputs.push(g.op('Softmax', [h], { axis: { int: 1 } }, single ? PROBABILITIES_NAME : `m${m}_p`));
    } else {
      memberOutputs.push(g.op('ArgMax', [h], { axis: { int: 1 }, keepdims: { int: 0 } }, `m${m}_vote`));
    }
  });

  if (aggregation === 'vote') {
    const depthConst = g.int64Constant('classes', [1], [classes]);
    const onOff = g.floatConstant('one_hot_values', [2], new Float32Array([0, 1]));
    const oneHots = memberOutputs.map((vote, m) => g.op('OneHot', [vote, depthConst, onOff], { axis: { int: -1 } }, `m${m}_one_hot`));
    const votes = g.op('Sum', oneHots, {}, 'votes');
    const scale = g.floatConstant('inverse_members', [], new Float32Array([1 / members.length]));
    g.op('Mul', [votes, scale], {}, PROBABILITIES_NAME);
  } else if (!single) {
    const total = g.op('Sum', memberOutputs, {}, 'sum_p');
    const scale = g.floatConstant('inverse_members', [], new Float32Array([1 / members.length]));
    g.op('Mul', [total, scale], {}, PROBABILITIES_NAME);
  }
  g.op('ArgMax', [PROBABILITIES_NAME], { axis: { int: 1 }, keepdims: { int: 0 } }, LABEL_NAME);
  g.floatOutput(PROBABILITIES_NAME, ['N', classes]);
  g.int64Output(LABEL_NAME, ['N']);
  const kind = layers.length === 2 ? 'logistic regression' : `MLP ${layers.join('-')}`;
  const projected = projection === 'unit-ball' ? ', inputs projected onto the unit L2 ball' : '';
  const masked = maskedFeatures.length > 0 ? `, input columns ${maskedFeatures.join(', ')} masked to 0` : '';
  return g.encode(`Lethe ${aggregation} ensemble of ${members.length} ${kind} model(s)${projected}${masked}.`);
}

/**
 * The members' weights back from a published file (its initializers m<i>_w<l>, m<i>_b<l>, float32 little-endian,
 * as buildInferenceGraph wrote them): a version whose weights exist nowhere else (approximate unlearning's) is
 * unlearned from again this way. Throws RUNTIME_ERROR when a member is missing or misshapen.
 */
export function readInferenceMembers(bytes: Uint8Array, layers: LayerSizes, count: number): Weights[] {
  const initializers = new Map((onnx.ModelProto.decode(bytes).graph?.initializer ?? []).map((t) => [t.name as string, t]));
  const shapes = weightShapes(layers);
  return Array.from({ length: count }, (_, m) =>
    shapes.map((shape, i) => {
      const name = `m${m}_${i % 2 === 0 ? 'w' : 'b'}${Math.floor(i / 2)}`;
      const raw = initializers.get(name)?.rawData;
      const length = shape.reduce((a, b) => a * b, 1);
      if (!raw || raw.length !== length * 4) throw new UnlearningError('RUNTIME_ERROR', `the published model has no ${length}-value initializer ${name}`);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Float32Array.from({ length }, (_, k) => view.getFloat32(k * 4, true));
    }),
  );
}
