// Approximate unlearning: a few seconds of SGD from the published weights instead of a retraining, with no
// guarantee, only evidence. Three algorithms, each on every shard model that held a forgotten sample:
// - finetune: fine-tune on the retained samples (the baseline of Golatkar et al. 2020 and later benchmarks);
// - neggrad+: NegGrad+ (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023): descend
//   beta * L(retained) - (1 - beta) * L(forgotten), a retained batch and a forgotten batch each step;
// - scrub: SCRUB (the same paper; their code meghdadk/SCRUB): the student starts as the model, the teacher is
//   the model; the first `maxSteps` epochs first ascend the distillation loss T^2 KL(teacher || student) at
//   temperature T on the forgotten samples (max-steps), then every epoch descends
//   gamma * CE + alpha * T^2 KL on the retained samples (min-steps).
// Defaults are the papers' small-scale ones where they carry over (NegGrad+: beta = 0.95; SCRUB: alpha = 0.001,
// gamma = 0.99, T = 4, 2 max-step epochs of 3), with two departures stated: plain SGD (the engine's optimizer)
// instead of SGD with momentum 0.9, at the model's own learning rate and batch size; and one epoch for finetune
// and NegGrad+ (the papers run 5 to 10 on deep networks; "it takes seconds" is the point here).
import { zeroMaskedColumns } from '../feature-mask';
import type { ApproximateAlgorithm } from '@lethe/events';
import { Weights } from '../architecture';
import { TrainingConfig } from '../config';
import { UnlearningError } from '../errors';
import { JsonValue } from '../events';
import { compareKeys, hashSampleKey } from '../hash';
import { Sample } from '../samples';
import { UnlearnRow, UnlearnStepRunner } from './unlearn-step-runner';

export const APPROXIMATE_ALGORITHM_NAMES: readonly ApproximateAlgorithm[] = ['finetune', 'neggrad+', 'scrub'];

/** What a forget request may ask of approximate unlearning (all but the algorithm default). */
export interface ApproximateOptions {
  algorithm: ApproximateAlgorithm;
  /** Passes over each updated shard's retained samples (finetune and neggrad+: 1, scrub: 3). */
  epochs?: number;
  /** Default: the model's own learning rate. */
  learningRate?: number;
  /** NegGrad+: the retained loss's weight beta (the forgotten loss's is -(1 - beta)); default 0.95. */
  beta?: number;
  /** SCRUB: epochs that start with max-steps on the forgotten samples (default 2), T (4), alpha (0.001), gamma (0.99). */
  maxSteps?: number;
  temperature?: number;
  alpha?: number;
  gamma?: number;
}

export type ResolvedApproximate = Required<ApproximateOptions>;

/** The options with their defaults; throws INVALID_REQUEST naming a bad one. */
export function resolveApproximate(options: ApproximateOptions, config: TrainingConfig): ResolvedApproximate {
  const fail = (message: string): never => {
    throw new UnlearningError('INVALID_REQUEST', message);
  };
  if (options === null || typeof options !== 'object') fail('approximate must be an object {algorithm}');
  if (!APPROXIMATE_ALGORITHM_NAMES.includes(options.algorithm))
    fail(`approximate.algorithm must be one of ${APPROXIMATE_ALGORITHM_NAMES.join(', ')}, got ${String(options.algorithm)}`);
  const scrub = options.algorithm === 'scrub';
  const resolved: ResolvedApproximate = {
    algorithm: options.algorithm,
    epochs: options.epochs ?? (scrub ? 3 : 1),
    learningRate: options.learningRate ?? config.learningRate,
    beta: options.beta ?? 0.95,
    maxSteps: options.maxSteps ?? 2,
    temperature: options.temperature ?? 4,
    alpha: options.alpha ?? 0.001,
    gamma: options.gamma ?? 0.99,
  };
  const integer = (name: keyof ResolvedApproximate, max: number) => {
    const v = resolved[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`approximate.${name} must be an integer in [0, ${max}], got ${String(v)}`);
  };
  const number = (name: keyof ResolvedApproximate, max: number, zero: 'zero allowed' | 'positive') => {
    const v = resolved[name];
    const low = zero === 'positive' ? '(0' : '[0';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v === 0 && zero === 'positive') || v > max) fail(`approximate.${name} must be a number in ${low}, ${max}], got ${String(v)}`);
  };
  integer('epochs', 100);
  integer('maxSteps', 100);
  number('learningRate', 100, 'positive');
  number('beta', 1, 'positive');
  number('temperature', 100, 'positive');
  number('alpha', 1e6, 'zero allowed');
  number('gamma', 1e6, 'zero allowed');
  if (resolved.epochs < 1) fail('approximate.epochs must be at least 1');
  return resolved;
}

/** The options as the version's manifest records them (`manifest.approximate.options`). */
export function approximateOptionsToJson(options: ResolvedApproximate): { [key: string]: JsonValue } {
  return { ...options };
}

/** One shard's samples as the algorithm sees them: packed rows, the retained ones first. */
export interface ShardUnlearning {
  shard: number;
  retained: readonly Sample[];
  forgotten: readonly Sample[];
  /** The shard model's published weights: the student's start and SCRUB's teacher. */
  weights: Weights;
}

/**
 * Runs the algorithm on one shard model and returns its new weights and the steps taken. Orders are seeded:
 * the same model, samples and options always give the same bits.
 */
export async function unlearnShard(
  runner: UnlearnStepRunner,
  config: TrainingConfig,
  options: ResolvedApproximate,
  input: ShardUnlearning,
): Promise<{ weights: Weights; steps: number }> {
  const { retained, forgotten } = input;
  const features = new Float32Array((retained.length + forgotten.length) * config.numFeatures);
  const labels = new Int32Array(retained.length + forgotten.length);
  [...retained, ...forgotten].forEach((sample, row) => {
    features.set(sample.features, row * config.numFeatures);
    labels[row] = sample.label;
  });
  zeroMaskedColumns(features, retained.length + forgotten.length, config.numFeatures, config.maskedFeatures);
  const batch = config.batchSize;
  const order = (which: 'retained' | 'forgotten', epoch: number) => {
    const samples = which === 'retained' ? retained : forgotten;
    const offset = which === 'retained' ? 0 : retained.length;
    const prefix = `lethe-approximate|${config.seed}|${options.algorithm}|${input.shard}|${which}|${epoch}\u0000`;
    const keyed = samples.map((sample, i) => ({ row: offset + i, key: hashSampleKey(sample, prefix) }));
    keyed.sort((a, b) => compareKeys(a.key, b.key));
    return keyed.map((k) => k.row);
  };
  const batches = (rows: number[]) => Array.from({ length: Math.ceil(rows.length / batch) }, (_, b) => rows.slice(b * batch, (b + 1) * batch));
  const teacher = input.weights;
  let student = input.weights;
  let steps = 0;
  const step = async (rows: UnlearnRow[]) => {
    student = await runner.step(student, teacher, features, labels, rows);
    steps++;
  };
  const { beta, temperature: T, alpha, gamma } = options;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const retainedBatches = batches(order('retained', epoch));
    if (options.algorithm === 'finetune') {
      for (const rows of retainedBatches) await step(rows.map((row) => ({ row, ce: 1 / rows.length, kd: 0 })));
    } else if (options.algorithm === 'neggrad+') {
      // Each retained batch is paired with the next forgotten batch, the forgotten samples cycled.
      const forgottenOrder = order('forgotten', epoch);
      const size = Math.min(batch, forgottenOrder.length);
      for (const [b, rows] of retainedBatches.entries()) {
        const forgottenRows = Array.from({ length: size }, (_, i) => forgottenOrder[(b * size + i) % forgottenOrder.length]);
        await step([
          ...rows.map((row) => ({ row, ce: beta / rows.length, kd: 0 })),
          ...forgottenRows.map((row) => ({ row, ce: -(1 - beta) / forgottenRows.length, kd: 0 })),
        ]);
      }
    } else {
      if (epoch < options.maxSteps) {
        for (const rows of batches(order('forgotten', epoch))) await step(rows.map((row) => ({ row, ce: 0, kd: -T / rows.length })));
      }
      for (const rows of retainedBatches) await step(rows.map((row) => ({ row, ce: gamma / rows.length, kd: (alpha * T) / rows.length })));
    }
  }
  return { weights: student, steps };
}
