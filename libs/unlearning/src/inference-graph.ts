import { GraphBuilder } from './onnx-graph';
import { LayerSizes, Weights, weightShapes } from './architecture';
import { Aggregation } from './config';

export const INPUT_NAME = 'input';
export const PROBABILITIES_NAME = 'probabilities';
export const LABEL_NAME = 'label';

/**
 * The published model: a standard ONNX inference graph holding every member (shard) network as initializers.
 *   input          float[N, features]
 *   probabilities  float[N, classes]  mean of the members' softmax outputs ('mean'), or the fraction of votes ('vote')
 *   label          int64[N]           argmax of probabilities (lowest class index on ties)
 */
export function buildInferenceGraph(layers: LayerSizes, members: readonly Weights[], aggregation: Aggregation): Uint8Array {
  if (members.length === 0) throw new RangeError('an ensemble needs at least one member');
  const g = new GraphBuilder('lethe_ensemble');
  const features = layers[0];
  const classes = layers[layers.length - 1];
  g.floatInput(INPUT_NAME, ['N', features]);
  const shapes = weightShapes(layers);
  const depth = layers.length - 1;
  const single = members.length === 1 && aggregation === 'mean';

  const memberOutputs: string[] = [];
  members.forEach((weights, m) => {
    let h = INPUT_NAME;
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
  return g.encode(`Lethe ${aggregation} ensemble of ${members.length} ${kind} model(s).`);
}
