import * as ort from 'onnxruntime-node';
import { LayerSizes, Weights, weightShapes } from '../architecture';
import { UnlearningError } from '../errors';
import { createSession, RuntimeOptions } from '../runtime';
import { weightNames } from '../step-graph';
import { buildUnlearnStepGraph, teacherNames } from './unlearn-step-graph';

/** One row of an unlearning step: a packed row's index and its two scales (see buildUnlearnStepGraph). */
export interface UnlearnRow {
  row: number;
  ce: number;
  kd: number;
}

/** Runs the approximate-unlearning step graph (R rows a step) on onnxruntime-node, one step after another. */
export class UnlearnStepRunner {
  private readonly names: string[];
  private readonly teacher: string[];
  private readonly shapes: number[][];
  private readonly features: number;
  private readonly classes: number;

  private constructor(
    private readonly session: ort.InferenceSession,
    layers: LayerSizes,
    readonly rows: number,
  ) {
    this.names = weightNames(layers);
    this.teacher = teacherNames(layers);
    this.shapes = weightShapes(layers);
    this.features = layers[0];
    this.classes = layers[layers.length - 1];
  }

  static async create(
    layers: LayerSizes,
    rows: number,
    constants: { learningRate: number; weightDecay: number; temperature: number },
    runtime: RuntimeOptions = {},
  ): Promise<UnlearnStepRunner> {
    const graph = buildUnlearnStepGraph(layers, rows, constants.learningRate, constants.weightDecay, constants.temperature);
    return new UnlearnStepRunner(await createSession(graph, runtime), layers, rows);
  }

  /**
   * One step on the listed rows (at most `rows` of them) of the packed matrices; returns the student's new
   * weights (fresh arrays). The same weights, rows and scales always give the same bits.
   */
  async step(student: Weights, teacher: Weights, features: Float32Array, labels: Int32Array, batch: readonly UnlearnRow[]): Promise<Weights> {
    if (batch.length === 0 || batch.length > this.rows) throw new RangeError(`an unlearning step takes 1..${this.rows} rows, got ${batch.length}`);
    const x = new Float32Array(this.rows * this.features);
    const y = new Float32Array(this.rows * this.classes);
    const ce = new Float32Array(this.rows);
    const kd = new Float32Array(this.rows);
    batch.forEach(({ row, ce: ceScale, kd: kdScale }, i) => {
      x.set(features.subarray(row * this.features, (row + 1) * this.features), i * this.features);
      y[i * this.classes + labels[row]] = 1;
      ce[i] = ceScale;
      kd[i] = kdScale;
    });
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', x, [this.rows, this.features]),
      y: new ort.Tensor('float32', y, [this.rows, this.classes]),
      ce_scale: new ort.Tensor('float32', ce, [this.rows, 1]),
      kd_scale: new ort.Tensor('float32', kd, [this.rows, 1]),
    };
    this.names.forEach((name, i) => (feeds[name] = new ort.Tensor('float32', student[i], this.shapes[i])));
    this.teacher.forEach((name, i) => (feeds[name] = new ort.Tensor('float32', teacher[i], this.shapes[i])));
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (error) {
      throw new UnlearningError('RUNTIME_ERROR', `unlearning step failed: ${(error as Error).message}`);
    }
    const loss = (out.loss.data as Float32Array)[0];
    if (!Number.isFinite(loss)) throw new UnlearningError('RUNTIME_ERROR', `approximate unlearning diverged: loss is ${loss}`);
    return this.names.map((name) => out[`${name}_next`].data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
