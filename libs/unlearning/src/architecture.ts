import { SeededRandom } from './random';

/** Layer widths from input to output, e.g. [784, 128, 10]; logistic regression is [features, classes]. */
export type LayerSizes = number[];

/** Weights of a dense ReLU network: [W0, b0, W1, b1, ...] with W_i of shape [in, out], row-major. */
export type Weights = Float32Array[];

export function weightShapes(layers: LayerSizes): number[][] {
  const shapes: number[][] = [];
  for (let i = 0; i + 1 < layers.length; i++) {
    shapes.push([layers[i], layers[i + 1]], [layers[i + 1]]);
  }
  return shapes;
}

/** Multiply-adds of one forward pass per sample (a training step costs about 3x this, times 2 FLOP each). */
export function countForwardMacs(layers: LayerSizes): number {
  let macs = 0;
  for (let i = 0; i + 1 < layers.length; i++) macs += layers[i] * layers[i + 1];
  return macs;
}

/**
 * Seeded initial weights: He-normal (std sqrt(2/fan_in)) before a ReLU, sqrt(1/fan_in) for the output layer,
 * zero biases. The label fixes the stream, so the same label always gives the same bits.
 */
export function initializeWeights(layers: LayerSizes, label: string): Weights {
  const random = new SeededRandom(label);
  const weights: Weights = [];
  for (let i = 0; i + 1 < layers.length; i++) {
    const fanIn = layers[i];
    const isOutput = i + 2 === layers.length;
    const std = Math.sqrt((isOutput ? 1 : 2) / fanIn);
    const w = new Float32Array(fanIn * layers[i + 1]);
    for (let k = 0; k < w.length; k++) w[k] = random.nextGaussian() * std;
    weights.push(w, new Float32Array(layers[i + 1]));
  }
  return weights;
}

/** Whether this machine stores float32 little-endian (the byte order of checkpoints and ONNX raw data). */
export const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** Concatenates the weights as little-endian float32 (the checkpoint format). */
export function serializeWeights(weights: Weights): Buffer {
  const total = weights.reduce((n, w) => n + w.length, 0);
  const out = Buffer.alloc(total * 4);
  let offset = 0;
  for (const w of weights) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), offset);
    else for (let k = 0; k < w.length; k++) out.writeFloatLE(w[k], offset + k * 4);
    offset += w.length * 4;
  }
  return out;
}

export function deserializeWeights(layers: LayerSizes, bytes: Uint8Array): Weights {
  const shapes = weightShapes(layers);
  const total = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== total * 4) {
    throw new RangeError(`checkpoint has ${bytes.length} bytes, want ${total * 4}`);
  }
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const weights: Weights = [];
  let offset = 0;
  for (const shape of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n);
    if (LITTLE_ENDIAN) new Uint8Array(w.buffer).set(bytes.subarray(offset, offset + n * 4));
    else for (let k = 0; k < n; k++) w[k] = buffer.readFloatLE(offset + k * 4);
    weights.push(w);
    offset += n * 4;
  }
  return weights;
}
