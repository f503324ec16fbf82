// Slow, obvious float64 versions of the ONNX graphs, for tests only.
import { LayerSizes, Weights } from '../architecture';

function forward(layers: LayerSizes, weights: Weights, x: number[]): { activations: number[][]; preActivations: number[][] } {
  const activations = [x];
  const preActivations: number[][] = [];
  for (let i = 0; i + 1 < layers.length; i++) {
    const w = weights[2 * i];
    const b = weights[2 * i + 1];
    const input = activations[i];
    const z: number[] = [];
    for (let o = 0; o < layers[i + 1]; o++) {
      let sum = b[o];
      for (let k = 0; k < layers[i]; k++) sum += input[k] * w[k * layers[i + 1] + o];
      z.push(sum);
    }
    preActivations.push(z);
    if (i + 2 < layers.length) activations.push(z.map((v) => Math.max(0, v)));
  }
  return { activations, preActivations };
}

export function referenceSoftmax(z: number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function referenceProbabilities(layers: LayerSizes, weights: Weights, x: number[]): number[] {
  const { preActivations } = forward(layers, weights, x);
  return referenceSoftmax(preActivations[preActivations.length - 1]);
}

/** One SGD step of mean softmax cross-entropy (+ L2 on weight matrices), gradients by the chain rule, in float64. */
export function referenceStep(layers: LayerSizes, weights: Weights, xs: number[][], ys: number[], lr: number, weightDecay = 0): { weights: number[][]; loss: number } {
  const grads = weights.map((w) => new Array<number>(w.length).fill(0));
  let loss = 0;
  const n = xs.length;
  xs.forEach((x, row) => {
    const { activations, preActivations } = forward(layers, weights, x);
    const p = referenceSoftmax(preActivations[preActivations.length - 1]);
    loss += -Math.log(p[ys[row]]) / n;
    let delta = p.map((v, c) => (v - (c === ys[row] ? 1 : 0)) / n);
    for (let i = layers.length - 2; i >= 0; i--) {
      const input = activations[i];
      const outWidth = layers[i + 1];
      for (let k = 0; k < layers[i]; k++) for (let o = 0; o < outWidth; o++) grads[2 * i][k * outWidth + o] += input[k] * delta[o];
      for (let o = 0; o < outWidth; o++) grads[2 * i + 1][o] += delta[o];
      if (i > 0) {
        const w = weights[2 * i];
        delta = Array.from({ length: layers[i] }, (_, k) => {
          let s = 0;
          for (let o = 0; o < outWidth; o++) s += delta[o] * w[k * outWidth + o];
          return preActivations[i - 1][k] > 0 ? s : 0;
        });
      }
    }
  });
  return { weights: weights.map((w, j) => Array.from(w, (v, k) => v - lr * (grads[j][k] + (j % 2 === 0 ? weightDecay * v : 0)))), loss };
}

/**
 * One DP-SGD step in float64, the obvious way: each example's gradient on its own (referenceStep on one row
 * at learning rate 1), its norm over every tensor, scaled to at most clipNorm, summed, plus noiseMultiplier *
 * clipNorm * noise, divided by `denominator`; W_next = (1 - lr wd) W - lr * that (no decay on biases).
 */
export function referenceDpStep(
  layers: LayerSizes,
  weights: Weights,
  xs: number[][],
  ys: number[],
  options: { learningRate: number; weightDecay: number; clipNorm: number; noiseMultiplier: number; denominator: number; noise: Float32Array[] },
): number[][] {
  const sums = weights.map((w) => new Array<number>(w.length).fill(0));
  xs.forEach((x, row) => {
    const stepped = referenceStep(layers, weights, [x], [ys[row]], 1).weights;
    const gradient = weights.map((w, j) => Array.from(w, (v, k) => v - stepped[j][k]));
    const norm = Math.sqrt(gradient.reduce((s, g) => s + g.reduce((t, v) => t + v * v, 0), 0));
    const factor = Math.min(1, options.clipNorm / norm);
    gradient.forEach((g, j) => g.forEach((v, k) => (sums[j][k] += v * factor)));
  });
  const std = options.noiseMultiplier * options.clipNorm;
  return weights.map((w, j) =>
    Array.from(w, (v, k) => {
      const decay = j % 2 === 0 ? 1 - options.learningRate * options.weightDecay : 1;
      return decay * v - (options.learningRate / options.denominator) * (sums[j][k] + std * options.noise[j][k]);
    }),
  );
}
