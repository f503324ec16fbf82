import * as ort from 'onnxruntime-node';
import { LayerSizes, Weights, weightShapes } from './architecture';
import { buildScanStepGraph, weightNames } from './step-graph';
import { createSession, RuntimeOptions } from './runtime';
import { UnlearningError } from './errors';
import { TrainingRow } from './samples';
import { zeroMaskedColumns } from './feature-mask';

/**
 * Bytes of input (x, y and row_scale of every step) one run of the steps graph takes at most: runs are cut
 * into chunks of at most this much (and at most MAX_STEPS_PER_RUN steps), so a long epoch never packs its
 * whole order into one buffer.
 */
export const STEPS_INPUT_BYTES = 8 << 20;
export const MAX_STEPS_PER_RUN = 256;

/**
 * Runs SGD steps of a network on onnxruntime-node, several per run: buildScanStepGraph's Scan, whose body is
 * the one-step graph node for node (each step computes the bits one run of that graph computes), so the
 * weights stay inside onnxruntime between the steps of a run and come out once, at its end.
 */
export class StepRunner {
  private readonly names: string[];
  private readonly shapes: number[][];
  private readonly classes: number;
  private readonly features: number;
  /** Steps one run takes at most (STEPS_INPUT_BYTES). */
  readonly stepsPerRun: number;
  // Input buffers reused by every run (a run awaits its end before the next one starts): K steps' rows.
  private readonly xs: Float32Array;
  private readonly ys: Float32Array;
  private readonly rowScales: Float32Array;
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
    const bytesPerStep = 4 * batchSize * (this.features + this.classes + 1);
    this.stepsPerRun = Math.max(1, Math.min(MAX_STEPS_PER_RUN, Math.floor(STEPS_INPUT_BYTES / bytesPerStep)));
    this.xs = new Float32Array(this.stepsPerRun * batchSize * this.features);
    this.ys = new Float32Array(this.stepsPerRun * batchSize * this.classes);
    this.rowScales = new Float32Array(this.stepsPerRun * batchSize);
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
      await createSession(buildScanStepGraph(layers, batchSize, learningRate, weightDecay), runtime),
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
    const { weights: next, losses } = await this.run(weights, rows, [batch]);
    return { weights: next, loss: losses[0] };
  }

  /**
   * Runs one step per batch, in order, and returns the final weights (fresh arrays owned by the caller; the
   * initial ones are left as they were): the bits of calling step() once per batch, in runs of up to
   * stepsPerRun steps. `onStep` is called once per step, after the run that took it.
   */
  async runSteps(
    initial: Weights,
    rows: readonly TrainingRow[],
    batches: readonly ArrayLike<number>[],
    onStep?: () => void,
  ): Promise<Weights> {
    if (batches.length === 0) return initial.map((w) => w.slice());
    let weights = initial;
    for (let start = 0; start < batches.length; start += this.stepsPerRun) {
      const chunk = batches.slice(start, start + this.stepsPerRun);
      ({ weights } = await this.run(weights, rows, chunk));
      if (onStep) for (let k = 0; k < chunk.length; k++) onStep();
    }
    return weights;
  }

  /** One run of the steps graph over `batches` (at most stepsPerRun), one after another. */
  private run(weights: Weights, rows: readonly TrainingRow[], batches: readonly ArrayLike<number>[]): Promise<{ weights: Weights; losses: Float32Array }> {
    const result = this.queue.then(() => this.runNow(weights, rows, batches));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(weights: Weights, rows: readonly TrainingRow[], batches: readonly ArrayLike<number>[]): Promise<{ weights: Weights; losses: Float32Array }> {
    const { batchSize, features, classes } = this;
    const steps = batches.length;
    if (steps === 0 || steps > this.stepsPerRun) throw new RangeError(`a run takes 1..${this.stepsPerRun} steps, got ${steps}`);
    const xs = this.xs.subarray(0, steps * batchSize * features);
    const ys = this.ys.subarray(0, steps * batchSize * classes);
    const rowScales = this.rowScales.subarray(0, steps * batchSize);
    ys.fill(0);
    batches.forEach((batch, k) => {
      const size = batch.length;
      if (size === 0 || size > batchSize) throw new RangeError(`batch has ${size} rows, want 1..${batchSize}`);
      // Padding rows: x = 0, y = 0, row_scale = 0 (they change nothing).
      const x = xs.subarray(k * batchSize * features, (k + 1) * batchSize * features);
      x.fill(0, size * features);
      rowScales.fill(0, k * batchSize + size, (k + 1) * batchSize);
      const scale = 1 / size;
      for (let i = 0; i < size; i++) {
        const row = rows[batch[i]];
        x.set(row.features, i * features);
        ys[(k * batchSize + i) * classes + row.label] = 1;
        rowScales[k * batchSize + i] = scale;
      }
      zeroMaskedColumns(x, size, features, this.maskedFeatures);
    });
    const feeds: Record<string, ort.Tensor> = {
      xs: new ort.Tensor('float32', xs, [steps, batchSize, features]),
      ys: new ort.Tensor('float32', ys, [steps, batchSize, classes]),
      row_scales: new ort.Tensor('float32', rowScales, [steps, batchSize, 1]),
    };
    this.names.forEach((name, i) => (feeds[`${name}_start`] = new ort.Tensor('float32', weights[i], this.shapes[i])));
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (error) {
      throw new UnlearningError('RUNTIME_ERROR', `training step failed: ${(error as Error).message}`);
    }
    const losses = checkLosses(out);
    // onnxruntime-node returns outputs in fresh JS buffers, owned by the caller from here on.
    return { weights: this.names.map((name) => out[`${name}_end`].data as Float32Array), losses };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function checkLosses(out: ort.InferenceSession.ReturnType): Float32Array {
  const losses = out.losses.data as Float32Array;
  for (const loss of losses) {
    if (!Number.isFinite(loss)) throw new UnlearningError('RUNTIME_ERROR', `training diverged: loss is ${loss}; lower the learning rate`);
  }
  return losses;
}
