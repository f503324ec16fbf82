import * as ort from 'onnxruntime-node';
import { LayerSizes, Weights, weightShapes } from '../architecture';
import { UnlearningError } from '../errors';
import { SeededRandom } from '../random';
import { createSession, RuntimeOptions } from '../runtime';
import { TrainingRow } from '../samples';
import { zeroMaskedColumns } from '../feature-mask';
import { weightNames } from '../step-graph';
import { accumulatorNames, buildDpStepGraph, DpStepConstants, noiseNames } from './dp-step-graph';

/**
 * The rows of the DP step graph for an expected batch of `batchSize`: the mean plus two standard deviations
 * of a Poisson batch (ceil(b + 2 sqrt(b))), so about 2% of steps sample more rows than the graph holds. Those
 * run in chunks whose clipped sums are added up before the noise and the update (exactly what one larger
 * graph would compute, up to float rounding): no sampled example is dropped or resampled, so the Poisson
 * sampling the accountant assumes is the sampling that ran.
 */
export function dpGraphRows(batchSize: number): number {
  return Math.ceil(batchSize + 2 * Math.sqrt(batchSize));
}

/** Runs DP-SGD steps (buildDpStepGraph) on onnxruntime-node: Poisson batches of any size, seeded noise. */
export class DpStepRunner {
  private readonly names: string[];
  private readonly shapes: number[][];
  private readonly features: number;
  private readonly classes: number;
  private readonly x: Float32Array;
  private readonly y: Float32Array;
  private readonly mask: Float32Array;
  /** Standard normals of the current step, one buffer per weight tensor. */
  private readonly noise: Float32Array[];
  private readonly batchTensors: Record<string, ort.Tensor>;
  private readonly noiseTensors: Record<string, ort.Tensor>;
  /** Zero gradient sums: the acc_* inputs of a step whose batch fits the graph. */
  private readonly zeroSums: Record<string, ort.Tensor>;

  private constructor(
    private readonly update: ort.InferenceSession,
    private readonly accumulate: ort.InferenceSession,
    readonly layers: LayerSizes,
    readonly rows: number,
    private readonly maskedFeatures: readonly number[] = [],
  ) {
    this.names = weightNames(layers);
    this.shapes = weightShapes(layers);
    this.features = layers[0];
    this.classes = layers[layers.length - 1];
    this.x = new Float32Array(rows * this.features);
    this.y = new Float32Array(rows * this.classes);
    this.mask = new Float32Array(rows);
    this.noise = this.shapes.map((shape) => new Float32Array(size(shape)));
    this.batchTensors = {
      x: new ort.Tensor('float32', this.x, [rows, this.features]),
      y: new ort.Tensor('float32', this.y, [rows, this.classes]),
      mask: new ort.Tensor('float32', this.mask, [rows, 1]),
    };
    this.noiseTensors = tensorsOf(noiseNames(layers), this.noise, this.shapes);
    this.zeroSums = tensorsOf(
      accumulatorNames(layers),
      this.shapes.map((shape) => new Float32Array(size(shape))),
      this.shapes,
    );
  }

  static async create(
    layers: LayerSizes,
    rows: number,
    constants: DpStepConstants,
    runtime: RuntimeOptions = {},
    maskedFeatures: readonly number[] = [],
  ): Promise<DpStepRunner> {
    const update = await createSession(buildDpStepGraph(layers, rows, constants, 'update'), runtime);
    const accumulate = await createSession(buildDpStepGraph(layers, rows, constants, 'accumulate'), runtime);
    return new DpStepRunner(update, accumulate, layers, rows, maskedFeatures);
  }

  /**
   * Runs one DP-SGD step per entry of `steps` (the indexes into `rows` it sampled, in order; possibly none: an empty
   * Poisson batch still takes a noise-only step), in order, and returns the final weights (fresh arrays).
   * Step k's noise is the standard normals of SeededRandom(noiseLabel(k)), weight tensor after weight tensor.
   */
  async runSteps(
    initial: Weights,
    rows: readonly TrainingRow[],
    steps: readonly Int32Array[],
    noiseLabel: (step: number) => string,
    onStep?: () => void,
  ): Promise<Weights> {
    let weights = initial;
    for (let k = 0; k < steps.length; k++) {
      const batch = steps[k];
      let sums = this.zeroSums;
      const chunks = Math.max(1, Math.ceil(batch.length / this.rows));
      for (let c = 0; c + 1 < chunks; c++) {
        this.fillBatch(rows, batch.subarray(c * this.rows, (c + 1) * this.rows));
        const out = await this.run(this.accumulate, { ...this.weightFeeds(weights), ...this.batchTensors, ...sums });
        sums = {};
        accumulatorNames(this.layers).forEach((name) => (sums[name] = out[`${name}_next`]));
      }
      this.fillBatch(rows, batch.subarray((chunks - 1) * this.rows));
      const random = new SeededRandom(noiseLabel(k));
      for (const buffer of this.noise) random.fillGaussian(buffer);
      const out = await this.run(this.update, { ...this.weightFeeds(weights), ...this.batchTensors, ...sums, ...this.noiseTensors });
      weights = this.names.map((name) => out[`${name}_next`].data as Float32Array);
      onStep?.();
    }
    return weights === initial ? initial.map((w) => w.slice()) : weights;
  }

  private weightFeeds(weights: Weights): Record<string, ort.Tensor> {
    return tensorsOf(this.names, weights, this.shapes);
  }

  private fillBatch(rows: readonly TrainingRow[], batch: Int32Array): void {
    const { x, y, mask } = this;
    x.fill(0, batch.length * this.features);
    y.fill(0);
    mask.fill(0);
    for (let i = 0; i < batch.length; i++) {
      const row = rows[batch[i]];
      x.set(row.features, i * this.features);
      y[i * this.classes + row.label] = 1;
      mask[i] = 1;
    }
    zeroMaskedColumns(x, batch.length, this.features, this.maskedFeatures);
  }

  private async run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await session.run(feeds);
    } catch (error) {
      throw new UnlearningError('RUNTIME_ERROR', `DP-SGD step failed: ${(error as Error).message}`);
    }
    const loss = (out.loss.data as Float32Array)[0];
    if (!Number.isFinite(loss)) throw new UnlearningError('RUNTIME_ERROR', `training diverged: loss is ${loss}; lower the learning rate`);
    return out;
  }

  async release(): Promise<void> {
    await this.update.release();
    await this.accumulate.release();
  }
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function tensorsOf(names: string[], buffers: Float32Array[], shapes: number[][]): Record<string, ort.Tensor> {
  const tensors: Record<string, ort.Tensor> = {};
  names.forEach((name, i) => (tensors[name] = new ort.Tensor('float32', buffers[i], shapes[i])));
  return tensors;
}
