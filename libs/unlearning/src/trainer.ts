import * as ort from 'onnxruntime-node';
import { LayerSizes, Weights, weightShapes } from './architecture';
import { buildStepGraph, weightNames } from './step-graph';
import { createSession, RuntimeOptions } from './runtime';
import { UnlearningError } from './errors';
import { TrainingRow } from './samples';
import { zeroMaskedColumns } from './feature-mask';

/** Runs the one-graph SGD step of a network on onnxruntime-node. */
export class StepRunner {
  private readonly names: string[];
  private readonly shapes: number[][];
  private readonly classes: number;
  private readonly features: number;
  // Input buffers reused by every step (a step awaits its run before the next one starts).
  private readonly x: Float32Array;
  private readonly y: Float32Array;
  private readonly rowScale: Float32Array;
  /** Tensors over the buffers above, made once (fewer short-lived objects per step: less garbage collection). */
  private readonly inputTensors: Record<string, ort.Tensor>;
  /** Steps of concurrent callers run one at a time: they share the input buffers above. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly layers: LayerSizes,
    readonly learningRate: number,
    readonly batchSize: number,
    private readonly maskedFeatures: readonly number[] = [],
  ) {
    this.names = weightNames(layers);
    this.shapes = weightShapes(layers);
    this.features = layers[0];
    this.classes = layers[layers.length - 1];
    this.x = new Float32Array(batchSize * this.features);
    this.y = new Float32Array(batchSize * this.classes);
    this.rowScale = new Float32Array(batchSize);
    this.inputTensors = {
      x: new ort.Tensor('float32', this.x, [batchSize, this.features]),
      y: new ort.Tensor('float32', this.y, [batchSize, this.classes]),
      row_scale: new ort.Tensor('float32', this.rowScale, [batchSize, 1]),
    };
  }

  static async create(
    layers: LayerSizes,
    learningRate: number,
    batchSize: number,
    runtime: RuntimeOptions = {},
    weightDecay = 0,
    maskedFeatures: readonly number[] = [],
  ): Promise<StepRunner> {
    return new StepRunner(
      await createSession(buildStepGraph(layers, batchSize, learningRate, weightDecay), runtime),
      layers,
      learningRate,
      batchSize,
      maskedFeatures,
    );
  }

  /**
   * One SGD step on rows `batch` (indexes into `rows`, at most batchSize of them); returns the new weights and
   * the mean loss of those rows. The same weights, rows and order always give the same bits.
   */
  async step(weights: Weights, rows: readonly TrainingRow[], batch: ArrayLike<number>): Promise<{ weights: Weights; loss: number }> {
    const out = await this.run({ ...this.inputTensors, ...this.weightTensors(weights, '') }, rows, batch, undefined);
    // onnxruntime-node returns outputs in fresh JS buffers, owned by the caller from here on.
    return { weights: this.names.map((name) => out[`${name}_next`].data as Float32Array), loss: checkLoss(out) };
  }

  /**
   * Runs one step per batch, in order, and returns the final weights (fresh arrays owned by the caller).
   * Same arithmetic as calling step() repeatedly, but the weights ping-pong between two preallocated
   * buffer sets that onnxruntime writes into, so no step allocates weight-sized arrays.
   */
  async runSteps(
    initial: Weights,
    rows: readonly TrainingRow[],
    batches: readonly ArrayLike<number>[],
    onStep?: () => void,
  ): Promise<Weights> {
    if (batches.length === 0) return initial.map((w) => w.slice());
    const buffers = [0, 1].map(() => this.shapes.map((shape) => new Float32Array(shape.reduce((a, b) => a * b, 1))));
    // Tensors over the initial weights and the two buffer sets; a set is fetched into, then fed from.
    const sets = [initial, ...buffers].map((weights) => ({ ...this.inputTensors, ...this.weightTensors(weights, '') }));
    const fetchSets = buffers.map((weights) => ({ ...this.weightTensors(weights, '_next'), loss: null }));
    let current = 0; // index into sets: 0 = initial, 1 + b = buffers[b]
    for (let k = 0; k < batches.length; k++) {
      const target = k % 2;
      const out = await this.run(sets[current], rows, batches[k], fetchSets[target]);
      checkLoss(out);
      current = 1 + target;
      onStep?.();
    }
    return buffers[current - 1].map((w) => w.slice());
  }

  private weightTensors(weights: Weights, suffix: string): Record<string, ort.Tensor> {
    const tensors: Record<string, ort.Tensor> = {};
    this.names.forEach((name, i) => (tensors[`${name}${suffix}`] = new ort.Tensor('float32', weights[i], this.shapes[i])));
    return tensors;
  }

  /** `feeds` are the input tensors and the weights' tensors; x, y and row_scale are filled here. */
  private run(
    feeds: Record<string, ort.Tensor>,
    rows: readonly TrainingRow[],
    batch: ArrayLike<number>,
    fetches: Record<string, ort.Tensor | null> | undefined,
  ): Promise<ort.InferenceSession.ReturnType> {
    const result = this.queue.then(() => this.runNow(feeds, rows, batch, fetches));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(
    feeds: Record<string, ort.Tensor>,
    rows: readonly TrainingRow[],
    batch: ArrayLike<number>,
    fetches: Record<string, ort.Tensor | null> | undefined,
  ): Promise<ort.InferenceSession.ReturnType> {
    const size = batch.length;
    const capacity = this.batchSize;
    if (size === 0 || size > capacity) throw new RangeError(`batch has ${size} rows, want 1..${capacity}`);
    const { x, y, rowScale } = this;
    x.fill(0, size * this.features);
    y.fill(0);
    rowScale.fill(0);
    const scale = 1 / size;
    for (let i = 0; i < size; i++) {
      const row = rows[batch[i]];
      x.set(row.features, i * this.features);
      y[i * this.classes + row.label] = 1;
      rowScale[i] = scale;
    }
    zeroMaskedColumns(x, size, this.features, this.maskedFeatures);
    try {
      if (!fetches) return await this.session.run(feeds);
      return await this.session.run(feeds, fetches);
    } catch (error) {
      throw new UnlearningError('RUNTIME_ERROR', `training step failed: ${(error as Error).message}`);
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function checkLoss(out: ort.InferenceSession.ReturnType): number {
  const loss = (out.loss.data as Float32Array)[0];
  if (!Number.isFinite(loss)) throw new UnlearningError('RUNTIME_ERROR', `training diverged: loss is ${loss}; lower the learning rate`);
  return loss;
}
