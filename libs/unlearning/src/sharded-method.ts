import { placeSample } from './assignment';
import { MemoryCheckpointStore } from './checkpoint-store';
import { hashHyperparameters, MethodName, normalizeConfig, TrainingConfig } from './config';
import { UnlearningError } from './errors';
import {
  buildPublishedMetrics,
  DEFAULT_EVALUATION_LIMIT,
  evaluateModel,
  evaluationToJson,
  ModelEvaluation,
  selectEvaluationSamples,
} from './evidence';
import { AffectedShard, JsonValue, UnlearnCompletedEvent } from './events';
import { ForgetEvidence, ForgetOutcome, ForgetRequest, TrainRequest, UnlearningMethod } from './method';
import { TrainedModel } from './model';
import { LabeledExample, Sample } from './samples';
import { buildVersion, EngineDependencies, RunnerPool } from './sharded-training';
import { checkEnoughData, validateExamples, validateSamples } from './validate';

/** Picks, per affected shard, the first slice to retrain after forgetting `forgotten`. */
export type ForgetPlanner = (model: TrainedModel, forgotten: readonly Sample[]) => Map<number, number>;

/**
 * The machinery full retrain and SISA share: validated inputs, seeded sharded training, publishing,
 * evidence and ledger events. The methods differ only in what forgetting retrains.
 */
export class ShardedMethod implements UnlearningMethod {
  private readonly pool: RunnerPool;
  /** Test sets already validated, with their length then (a test set is usually passed again and again). */
  private readonly validatedTestSets = new WeakMap<readonly LabeledExample[], number>();

  constructor(
    readonly name: MethodName,
    private readonly deps: EngineDependencies,
    private readonly planForget: ForgetPlanner,
  ) {
    this.pool = new RunnerPool();
  }

  async train(request: TrainRequest): Promise<TrainedModel> {
    const config = normalizeConfig(request.config);
    if (config.method !== this.name) throw new UnlearningError('INVALID_CONFIG', `config.method is '${config.method}', this method is '${this.name}'`);
    checkModelId(request.modelId);
    const version = request.version ?? 1;
    if (!Number.isSafeInteger(version) || version < 1) throw new UnlearningError('INVALID_REQUEST', `version must be a positive integer, got ${String(version)}`);
    const limit = checkLimit(request.evaluationLimit);
    validateSamples(request.samples, config);
    checkEnoughData(request.samples, config);
    if (request.testSet) this.validateTestSet(request.testSet, config);
    const samples = [...request.samples];
    const evaluated = selectEvaluationSamples(samples, config.seed, limit);
    const built = await buildVersion(this.deps, this.pool, {
      modelId: request.modelId,
      version,
      config,
      hyperparamsHash: hashHyperparameters(config),
      samples,
      fromSlices: allShardsFromScratch(config.shards),
      phase: 'train',
      evaluate: async (onnx, sha) => {
        const evaluation = await evaluateModel(onnx, sha, { retain: evaluated, forget: [], test: request.testSet }, this.deps.runtime);
        return buildPublishedMetrics(evaluation, samples.length, evaluated.length, request.testSet?.length ?? 0);
      },
    });
    await this.deps.ledger?.append(built.events);
    return built.model;
  }

  async forget(model: TrainedModel, request: ForgetRequest): Promise<ForgetOutcome> {
    if (model?.config?.method !== this.name) {
      throw new UnlearningError('INVALID_REQUEST', `model ${model?.modelId} was trained by '${model?.config?.method}', not '${this.name}'`);
    }
    const { forgotten, retained } = splitForget(model, request);
    const limit = checkLimit(request.evaluationLimit);
    checkEnoughData(retained, model.config);
    if (request.testSet) this.validateTestSet(request.testSet, model.config);
    const fromSlices = this.planForget(model, forgotten);
    const sets = { retain: selectEvaluationSamples(retained, model.config.seed, limit), forget: forgotten, test: request.testSet };
    const testCount = request.testSet?.length ?? 0;
    const started = process.hrtime.bigint();
    const before = await evaluateModel(model.onnx, model.onnxSha256, sets, this.deps.runtime);
    const evaluations: ModelEvaluation[] = [];
    const evaluate = async (onnx: Uint8Array, sha: string) => {
      const evaluation = await evaluateModel(onnx, sha, sets, this.deps.runtime);
      evaluations.push(evaluation);
      return buildPublishedMetrics(evaluation, retained.length, sets.retain.length, testCount);
    };
    const common = { modelId: model.modelId, version: model.version + 1, config: model.config, hyperparamsHash: model.hyperparamsHash, samples: retained, evaluate };
    const evaluatedBefore = process.hrtime.bigint();
    const built = await buildVersion(this.deps, this.pool, { ...common, fromSlices, previous: model, phase: 'unlearn' });
    const timings = { evaluateBefore: Number(evaluatedBefore - started) / 1e9, retrain: built.trainSeconds, publish: built.publishSeconds, reference: 0 };
    const evidence: ForgetEvidence = {
      forgottenCount: forgotten.length,
      retainCount: retained.length,
      retainEvaluated: sets.retain.length,
      before,
      after: evaluations[0],
    };
    if (request.compareWithRetrain) {
      const reference = await buildVersion({ ...this.deps, store: new MemoryCheckpointStore() }, this.pool, {
        ...common,
        fromSlices: allShardsFromScratch(model.config.shards),
        phase: 'reference',
      });
      evidence.reference = { ...evaluations[1], onnxSha256: reference.model.onnxSha256 };
      timings.reference = reference.trainSeconds + reference.publishSeconds;
    }
    const affected: AffectedShard[] = [...fromSlices.entries()].sort((a, b) => a[0] - b[0]).map(([shard, fromSlice]) => ({ shard, fromSlice }));
    const event: UnlearnCompletedEvent = {
      type: 'UNLEARN_COMPLETED',
      version: 1,
      modelId: model.modelId,
      requestIds: [...request.requestIds],
      affected,
      oldOnnxSha256: model.onnxSha256,
      newOnnxSha256: built.model.onnxSha256,
      modelVersion: built.model.version,
      evidence: evidenceToJson(evidence, testCount),
    };
    await this.deps.ledger?.append([...built.events, event]);
    return { model: built.model, affected, event, evidence, steps: built.steps, timings };
  }

  private validateTestSet(testSet: readonly LabeledExample[], config: TrainingConfig): void {
    if (this.validatedTestSets.get(testSet) === testSet.length) return;
    validateExamples(testSet, config);
    this.validatedTestSets.set(testSet, testSet.length);
  }

  async release(): Promise<void> {
    await this.pool.release();
  }
}

function allShardsFromScratch(shards: number): Map<number, number> {
  return new Map(Array.from({ length: shards }, (_, shard) => [shard, 0]));
}

function checkLimit(limit: number | undefined): number {
  const value = limit ?? DEFAULT_EVALUATION_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1) throw new UnlearningError('INVALID_REQUEST', `evaluationLimit must be a positive integer, got ${String(limit)}`);
  return value;
}

function checkModelId(modelId: unknown): void {
  if (typeof modelId !== 'string' || modelId.length === 0 || modelId.length > 200) {
    throw new UnlearningError('INVALID_REQUEST', 'modelId must be a non-empty string of at most 200 characters');
  }
}

/** Validates a forget request against the model's samples; UNKNOWN_SAMPLE lists every id the model never learned. */
function splitForget(model: TrainedModel, request: ForgetRequest): { forgotten: Sample[]; retained: Sample[] } {
  if (!request || !Array.isArray(request.requestIds) || request.requestIds.length === 0 || request.requestIds.some((id) => typeof id !== 'string' || id.length === 0)) {
    throw new UnlearningError('INVALID_REQUEST', 'requestIds must be a non-empty array of non-empty strings');
  }
  if (!Array.isArray(request.externalIds) || request.externalIds.length === 0 || request.externalIds.some((id) => typeof id !== 'string')) {
    throw new UnlearningError('INVALID_REQUEST', 'externalIds must be a non-empty array of strings');
  }
  const wanted = new Set(request.externalIds);
  const known = new Set(model.samples.map((s) => s.externalId));
  const unknown = [...wanted].filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new UnlearningError('UNKNOWN_SAMPLE', `${unknown.length} sample(s) are not in model ${model.modelId} version ${model.version}: ${unknown.slice(0, 10).join(', ')}`, {
      issues: unknown.map((externalId) => ({ externalId, message: 'not a training sample of this model version' })),
    });
  }
  const forgotten: Sample[] = [];
  const retained: Sample[] = [];
  for (const sample of model.samples) (wanted.has(sample.externalId) ? forgotten : retained).push(sample);
  return { forgotten, retained };
}

/** SISA: each shard holding a forgotten sample restarts at the earliest slice holding one; other shards are untouched. */
export function planSisaForget(model: TrainedModel, forgotten: readonly Sample[]): Map<number, number> {
  const fromSlices = new Map<number, number>();
  for (const sample of forgotten) {
    const { shard, slice } = placeSample(model.config.seed, sample.externalId, model.config.shards, model.config.slices);
    fromSlices.set(shard, Math.min(slice, fromSlices.get(shard) ?? slice));
  }
  return fromSlices;
}

/** Full retrain: every shard (there is one) from the first slice, that is, from scratch. */
export function planFullRetrain(model: TrainedModel): Map<number, number> {
  return new Map(model.shards.map((s) => [s.shard, 0]));
}

function evidenceToJson(evidence: ForgetEvidence, testCount: number): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {
    forgottenCount: evidence.forgottenCount,
    retainCount: evidence.retainCount,
    retainEvaluated: evidence.retainEvaluated,
    testCount,
    membershipAttack: 'loss-threshold AUC, forgotten vs test (Mann-Whitney)',
    before: evaluationToJson(evidence.before),
    after: evaluationToJson(evidence.after),
  };
  if (evidence.reference) out.reference = { ...evaluationToJson(evidence.reference), onnxSha256: evidence.reference.onnxSha256 };
  return out;
}
