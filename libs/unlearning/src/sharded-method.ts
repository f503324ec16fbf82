import { batchOf, placeSample, planShards, removeFromPlan } from './assignment';
import { ApproximateOptions, approximateOptionsToJson, resolveApproximate, unlearnShard } from './approximate/approximate-unlearning';
import { UnlearnStepRunner } from './approximate/unlearn-step-runner';
import { serializeWeights, Weights } from './architecture';
import { EnsembleMember } from './ensemble-evaluator';
import { sha256Hex } from './hash';
import { buildInferenceGraph, readInferenceMembers } from './inference-graph';
import { checkMaskedFeatures, maskedFeaturesField, maskOf, unionMaskedFeatures } from './feature-mask';
import { computePermutationImportance } from './feature-importance';
import { fairnessOfPublished, fairnessToJson, measureFairness } from './fairness';
import { buildManifest } from './manifest';
import { ProgressTracker } from './progress';
import { detectRuntimeEnvelope } from './runtime-envelope';
import { MemoryCheckpointStore } from './checkpoint-store';
import { hashHyperparameters, layerSizesOf, MethodName, normalizeConfig, TrainingConfig } from './config';
import { UnlearningError } from './errors';
import {
  buildPublishedMetrics,
  DEFAULT_EVALUATION_LIMIT,
  evaluateModel,
  EvaluationSets,
  evaluationToJson,
  ModelEvaluation,
  selectEvaluationSamples,
} from './evidence';
import { AffectedShard, EvidenceRecordedEvent, JsonValue, ModelPublishedEvent, UnlearnCompletedEvent } from './events';
import type { MembershipEvidence } from '@lethe/events';
import {
  EvidenceRequest,
  FeatureForgetRequest,
  ForgetEvidence,
  ForgetOutcome,
  ForgetRequest,
  ForgetTimings,
  MembershipRequest,
  PublishedForget,
  PublishForgetRequest,
  RecordedEvidence,
  RelearnRequest,
  TrainRequest,
  UnlearningMethod,
} from './method';
import { createMembershipEngine } from './membership/engine';
import { measureMembership, MEMBERSHIP_ATTACK } from './membership/measure';
import { checkMembershipOptions, MEMBERSHIP_LIMITS } from './membership/options';
import { TrainedModel } from './model';
import { compactFeatures, LabeledExample, Sample } from './samples';
import { PhaseClock } from './phase-clock';
import { buildVersion, EngineContext, EngineDependencies, lastSlice, logToStderr, PublishedEnsemble } from './sharded-training';
import { checkEnoughData, validateExamples, validateSamples } from './validate';

/** Picks, per affected shard, the first slice to retrain after forgetting `forgotten`. */
export type ForgetPlanner = (model: TrainedModel, forgotten: readonly Sample[]) => Map<number, number>;

/**
 * The machinery full retrain and SISA share: validated inputs, seeded sharded training, publishing,
 * evidence and ledger events. The methods differ only in what forgetting retrains.
 */
export class ShardedMethod implements UnlearningMethod {
  private readonly context: EngineContext;
  /** Test sets already validated, with their length then (a test set is usually passed again and again). */
  private readonly validatedTestSets = new WeakMap<readonly LabeledExample[], number>();
  /**
   * The samples of each version this method's forget made: those of the version before (weakly: a strong
   * reference chained every earlier version's samples, forgotten ones included, to the latest for as long as
   * the method was kept), less the forgotten ones; dropped once recordEvidence used it.
   */
  private readonly derivations = new WeakMap<readonly Sample[], Derivation>();

  constructor(readonly name: MethodName, private readonly deps: EngineDependencies, private readonly planForget: ForgetPlanner) {
    this.context = new EngineContext(deps.runtime);
  }

  async train(request: TrainRequest): Promise<TrainedModel> {
    const config = normalizeConfig(request.config);
    if (config.method !== this.name)
      throw new UnlearningError('INVALID_CONFIG', `config.method is '${config.method}', this method is '${this.name}'`);
    checkModelId(request.modelId);
    const version = request.version ?? 1;
    if (!Number.isSafeInteger(version) || version < 1)
      throw new UnlearningError('INVALID_REQUEST', `version must be a positive integer, got ${String(version)}`);
    const limit = checkLimit(request.evaluationLimit);
    validateSamples(request.samples, config);
    checkEnoughData(request.samples, config);
    if (request.testSet) this.validateTestSet(request.testSet, config);
    const samples = compactFeatures(request.samples);
    const sets = { retain: selectEvaluationSamples(samples, config.seed, limit), forget: [], test: request.testSet };
    const built = await buildVersion(this.deps, this.context, {
      modelId: request.modelId,
      version,
      config,
      hyperparamsHash: hashHyperparameters(config),
      samples,
      fromSlices: allShardsFromScratch(config.shards),
      onExported: this.deps.onExported,
      phase: 'train',
      clock: request.clock,
      // Each shard task's model is evaluated on the evidence rows as soon as its weights are read, while the others
      // train: evaluate then combines cached outputs (the same bits: a member's output for a row is computed alone).
      prepareMember: (member) => this.context.evaluator.predict(layerSizesOf(config), config.aggregation, [member], [...sets.retain, ...sets.forget, ...(sets.test ?? [])]),
      evaluate: async (published) => {
        const evaluation = await this.evaluateMembers(config, published, sets);
        const metrics = buildPublishedMetrics(evaluation, samples.length, sets.retain.length, request.testSet?.length ?? 0);
        const fairness = await fairnessOfPublished(published, request.testSet, request.protectedFeature);
        return fairness ? { ...metrics, fairness } : metrics;
      },
    });
    await this.deps.ledger?.append(built.events);
    request.clock?.lap('ledger');
    return built.model;
  }

  async relearn(model: TrainedModel, request: RelearnRequest): Promise<TrainedModel> {
    if (model?.config?.method !== this.name)
      throw new UnlearningError('INVALID_REQUEST', `model ${model?.modelId} was trained by '${model?.config?.method}', not '${this.name}'`);
    const limit = checkLimit(request.evaluationLimit);
    const known = new Map(model.samples.map((s) => [s.externalId, batchOf(s)]));
    const wanted = new Set(request.externalIds);
    const added = request.samples.filter((s) => wanted.has(s.externalId));
    if (wanted.size === 0 || added.length !== wanted.size || added.some((s) => known.has(s.externalId)))
      throw new UnlearningError('INVALID_REQUEST', 'externalIds must name samples of request.samples that the model does not hold');
    if (request.samples.length !== model.samples.length + added.length || request.samples.some((s) => !wanted.has(s.externalId) && !known.has(s.externalId)))
      throw new UnlearningError('INVALID_REQUEST', "request.samples must be the model's samples and the ones learned again");
    validateSamples(added, model.config);
    if (request.testSet) this.validateTestSet(request.testSet, model.config);
    if (request.append && model.config.method !== 'sisa' && model.config.method !== 'full-retrain')
      throw new UnlearningError('INVALID_REQUEST', `append: model ${model.modelId} (${model.config.method}) has no slices to append`);
    // The model's samples keep the batch they were learned in; appended ones are the next learn batch (a slice
    // after every shard's last one); samples learned again take the batch each one gives (where it was before).
    // (After the model's slices: a batch whose samples were all forgotten keeps its slice, empty, and its number.)
    const appendedBefore = slicesOf(model) - model.config.slices;
    const batch = request.append ? Math.max(appendedBefore, ...model.samples.map(batchOf)) + 1 : undefined;
    const samples = compactFeatures(
      request.samples.map((s) => {
        const at = wanted.has(s.externalId) ? (batch ?? batchOf(s)) : known.get(s.externalId)!;
        return at === batchOf(s) ? s : { ...s, batch: at };
      }),
    );
    const sets = { retain: selectEvaluationSamples(samples, model.config.seed, limit), forget: [], test: request.testSet };
    // What forgetting them retrained: the same shards from the same slices (all of them after an approximate version).
    const approximate = isApproximateVersion(model);
    const built = await buildVersion(this.deps, this.context, {
      modelId: model.modelId,
      version: model.version + 1,
      config: model.config,
      hyperparamsHash: model.hyperparamsHash,
      samples,
      fromSlices: approximate
        ? allShardsFromScratch(model.config.shards)
        : batch !== undefined
          ? new Map(Array.from({ length: model.config.shards }, (_, shard) => [shard, model.config.slices - 1 + batch]))
          : this.planForget(model, samples.filter((s) => wanted.has(s.externalId))),
      previous: approximate ? undefined : model,
      keepSlices: slicesOf(model),
      onExported: this.deps.onExported,
      phase: 'train',
      evaluate: async (published) => {
        const evaluation = await this.evaluateMembers(model.config, published, sets);
        return buildPublishedMetrics(evaluation, samples.length, sets.retain.length, request.testSet?.length ?? 0);
      },
    });
    await this.deps.ledger?.append(built.events);
    return built.model;
  }

  async forgetFeatures(model: TrainedModel, request: FeatureForgetRequest): Promise<{ model: TrainedModel; event: UnlearnCompletedEvent }> {
    if (model?.config?.method !== this.name)
      throw new UnlearningError('INVALID_REQUEST', `model ${model?.modelId} was trained by '${model?.config?.method}', not '${this.name}'`);
    if (!Array.isArray(request?.requestIds) || request.requestIds.length === 0)
      throw new UnlearningError('INVALID_REQUEST', 'requestIds must name at least one forget request');
    const requested = checkMaskedFeatures(request.features, model.config.numFeatures, 'features');
    const config = normalizeConfig({ ...model.config, maskedFeatures: unionMaskedFeatures(model.config.maskedFeatures, requested) });
    const limit = checkLimit(request.evaluationLimit);
    if (request.testSet) this.validateTestSet(request.testSet, config);
    const retain = selectEvaluationSamples(model.samples, config.seed, limit);
    const rows = request.testSet && request.testSet.length > 0 ? request.testSet : retain;
    const sets = { retain, forget: [], test: request.testSet };
    const built = await buildVersion(this.deps, this.context, {
      modelId: model.modelId,
      version: model.version + 1,
      config,
      hyperparamsHash: hashHyperparameters(config),
      samples: model.samples,
      fromSlices: allShardsFromScratch(config.shards),
      // Every shard from scratch; the version before only keeps its slices (a learn batch's emptied one stays).
      previous: isApproximateVersion(model) ? undefined : model,
      keepSlices: slicesOf(model),
      onExported: this.deps.onExported,
      phase: 'unlearn',
      evaluate: async (published) =>
        buildPublishedMetrics(await this.evaluateMembers(config, published, sets), model.samples.length, retain.length, request.testSet?.length ?? 0),
    });
    const measure = async (m: TrainedModel) => ({
      ...evaluationToJson(await evaluateModel(m.onnx, m.onnxSha256, sets)),
      permutationImportance: (await computePermutationImportance(m.onnx, m.onnxSha256, rows, requested, config.seed)).columns.map((c) => ({ ...c })),
      ...(request.protectedFeature !== undefined && request.testSet && request.testSet.length > 0
        ? { fairness: fairnessToJson(await measureFairness(m.onnx, m.onnxSha256, request.testSet, request.protectedFeature)) }
        : {}),
    });
    const event: UnlearnCompletedEvent = {
      type: 'UNLEARN_COMPLETED',
      version: 1,
      modelId: model.modelId,
      requestIds: [...request.requestIds],
      affected: [...allShardsFromScratch(config.shards).entries()].map(([shard, fromSlice]) => ({ shard, fromSlice })),
      oldOnnxSha256: model.onnxSha256,
      newOnnxSha256: built.model.onnxSha256,
      modelVersion: built.model.version,
      evidence: {
        features: requested,
        importanceMeasuredOn: rows === retain ? 'training evaluation subset' : 'holdout',
        evaluatedRows: rows.length,
        before: await measure(model),
        after: await measure(built.model),
      },
      guarantee: { kind: 'exact' },
      ...maskedFeaturesField(config),
    };
    await this.deps.ledger?.append([...built.events, event]);
    return { model: built.model, event };
  }

  forget(model: TrainedModel, request: ForgetRequest): Promise<ForgetOutcome> {
    return this.forgetWith(model, request, 'inline') as Promise<ForgetOutcome>;
  }

  publishForget(model: TrainedModel, request: PublishForgetRequest): Promise<PublishedForget> {
    return this.forgetWith(model, laterForgetRequest(request), 'later');
  }

  /** A forget, its evidence measured inside it ('inline') or not at all ('later': recordEvidence measures it). */
  private async forgetWith(model: TrainedModel, request: ForgetRequest, evidenceAt: 'inline' | 'later'): Promise<PublishedForget & { evidence?: ForgetEvidence }> {
    const clock = new PhaseClock();
    if (model?.config?.method !== this.name) {
      throw new UnlearningError('INVALID_REQUEST', `model ${model?.modelId} was trained by '${model?.config?.method}', not '${this.name}'`);
    }
    const later = evidenceAt === 'later';
    const { forgotten, retained, newIndexOf } = splitForget(model, request);
    const limit = checkLimit(request.evaluationLimit);
    if (request.membership) checkMembershipOptions(request.membership);
    const version = checkVersion(model, request.version);
    checkEnoughData(retained, model.config);
    if (request.testSet) this.validateTestSet(request.testSet, model.config);
    // Approximate unlearning is inline only (publishForget takes no `approximate`): its evidence is in its entry.
    if (request.approximate) return this.forgetApproximately(model, request, { forgotten, retained, limit, version, clock });
    // A version left by approximate unlearning has no lineage of checkpoints to resume from: every shard is
    // trained again from scratch on what it keeps (the bytes a training without the samples gives).
    const approximate = isApproximateVersion(model);
    const fromSlices =
      request.retrainFromScratch || approximate ? allShardsFromScratch(model.config.shards) : this.planForget(model, forgotten);
    const earlier = this.context.planOf(model.samples, model.config);
    const plan = earlier && removeFromPlan(earlier, newIndexOf);
    this.derivations.set(retained, { from: new WeakRef(model.samples), removed: new Set(forgotten) });
    const testCount = request.testSet?.length ?? 0;
    // Published first ('later'): nothing is evaluated before the new version is.
    const sets = later
      ? undefined
      : {
          retain: selectEvaluationSamples(retained, model.config.seed, limit, { samples: model.samples, removed: new Set(forgotten) }),
          forget: forgotten,
          test: request.testSet,
        };
    clock.lap('prepare');
    const before = sets && (await this.evaluateMembers(model.config, { members: await this.membersOf(model) }, sets));
    clock.lap('evaluateBefore');
    let after: ForgetEvidence['after'] | undefined;
    const built = await buildVersion(this.deps, this.context, {
      modelId: model.modelId,
      version,
      config: model.config,
      hyperparamsHash: model.hyperparamsHash,
      samples: retained,
      plan,
      fromSlices,
      previous: approximate ? undefined : model,
      keepSlices: slicesOf(model),
      onExported: this.deps.onExported,
      phase: 'unlearn',
      clock,
      evaluate: async (published) => {
        if (!sets) return { samples: retained.length };
        after = await this.evaluateMembers(model.config, published, sets);
        return buildPublishedMetrics(after, retained.length, sets.retain.length, testCount);
      },
    });
    let evidence: ForgetEvidence | undefined;
    if (sets) {
      evidence = { forgottenCount: forgotten.length, retainCount: retained.length, retainEvaluated: sets.retain.length, before: before!, after: after! };
      await this.addSlowEvidence(evidence, model, built.model, forgotten, sets, request, clock);
    }
    const affected: AffectedShard[] = [...built.fromSlices.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([shard, fromSlice]) => ({ shard, fromSlice }));
    const fairnessBefore = await fairnessOfPublished(model, request.testSet, request.protectedFeature);
    const fairness: { [key: string]: JsonValue } = fairnessBefore
      ? { fairness: { before: fairnessBefore, after: (await fairnessOfPublished(built.model, request.testSet, request.protectedFeature))! } }
      : {};
    const event: UnlearnCompletedEvent = {
      type: 'UNLEARN_COMPLETED',
      version: 1,
      modelId: model.modelId,
      requestIds: [...request.requestIds],
      affected,
      oldOnnxSha256: model.onnxSha256,
      newOnnxSha256: built.model.onnxSha256,
      modelVersion: built.model.version,
      evidence: {
        ...(evidence ? evidenceToJson(evidence, testCount) : { forgottenCount: forgotten.length, retainCount: retained.length, recordedIn: 'EVIDENCE_RECORDED' }),
        ...fairness,
      },
      guarantee: { kind: 'exact' },
      ...maskedFeaturesField(model.config),
    };
    await this.deps.ledger?.append([...built.events, event]);
    clock.lap('ledger');
    return { model: built.model, affected, event, ...(evidence ? { evidence } : {}), steps: built.steps, timings: forgetTimings(clock) };
  }

  async recordEvidence(before: TrainedModel, after: TrainedModel, request: EvidenceRequest): Promise<RecordedEvidence> {
    const clock = new PhaseClock();
    this.checkSameModel(before, after, 'recordEvidence');
    return recordEvidenceWith(this.deps, before, after, request, {
      clock,
      derivations: this.derivations,
      validateTestSet: (testSet) => this.validateTestSet(testSet, before.config),
      evaluate: async (model, sets) => this.evaluateMembers(model.config, { members: await this.membersOf(model) }, sets),
      addSlowEvidence: (evidence, forgotten, sets) => this.addSlowEvidence(evidence, before, after, forgotten, sets, request, clock),
    });
  }

  /**
   * The evidence that costs trainings, when asked for (addSlowEvidence): the reference trained from scratch without
   * the samples (with its own store, evaluated independently: its ONNX file is loaded and run whole, sharing no
   * cached output with the unlearned version), and the membership attack.
   */
  private addSlowEvidence(
    evidence: ForgetEvidence,
    before: TrainedModel,
    after: TrainedModel,
    forgotten: readonly Sample[],
    sets: EvaluationSets,
    request: SlowEvidenceRequest,
    clock: PhaseClock,
  ): Promise<void> {
    const testCount = request.testSet?.length ?? 0;
    return addSlowEvidence(this, this.deps, evidence, { before, after, forgotten }, request, clock, async () => {
      let evaluation: ForgetEvidence['after'] | undefined;
      const reference = await buildVersion({ ...this.deps, store: new MemoryCheckpointStore() }, this.context, {
        modelId: after.modelId,
        version: after.version,
        config: after.config,
        hyperparamsHash: after.hyperparamsHash,
        samples: after.samples,
        fromSlices: allShardsFromScratch(after.config.shards),
        phase: 'reference',
        evaluate: async (published) => {
          evaluation = await evaluateModel(published.onnx, published.onnxSha256, sets, this.deps.runtime);
          return buildPublishedMetrics(evaluation, after.samples.length, sets.retain.length, testCount);
        },
      });
      return { ...(evaluation as ForgetEvidence['after']), onnxSha256: reference.model.onnxSha256 };
    });
  }

  async measureMembership(before: TrainedModel, after: TrainedModel, request: MembershipRequest): Promise<MembershipEvidence> {
    this.checkSameModel(before, after, 'membership');
    if (request.testSet) this.validateTestSet(request.testSet, before.config);
    const engine = createMembershipEngine(this.deps, this.context.pool, this.planForget, (model) => this.membersOf(model));
    try {
      return await measureMembership(engine, { before, after, testSet: request.testSet, options: request.options, onProgress: this.deps.onProgress });
    } finally {
      await engine.release();
    }
  }

  /**
   * Approximate unlearning (approximate/): the algorithm runs on each shard model that held a forgotten sample,
   * from its published weights, and the new version is published from the updated members. No checkpoint is
   * written (the weights are in the published file) and no batch is logged: the version learned nothing new.
   */
  private async forgetApproximately(
    model: TrainedModel,
    request: ForgetRequest,
    prepared: { forgotten: Sample[]; retained: Sample[]; limit: number; version: number; clock: PhaseClock },
  ): Promise<ForgetOutcome> {
    const { forgotten, retained, limit, version, clock } = prepared;
    const { config } = model;
    const options = resolveApproximate(request.approximate as ApproximateOptions, config);
    const retain = selectEvaluationSamples(retained, config.seed, limit, { samples: model.samples, removed: new Set(forgotten) });
    const sets = { retain, forget: forgotten, test: request.testSet };
    const testCount = request.testSet?.length ?? 0;
    const layers = layerSizesOf(config);
    const members = await this.membersOf(model);
    clock.lap('prepare');
    const before = await this.evaluateMembers(config, { members }, sets);
    clock.lap('evaluateBefore');
    const plan = planShards(retained, config.seed, config.shards, config.slices);
    const touched = [...planSisaForget(model, forgotten).keys()].sort((a, b) => a - b);
    const progress = new ProgressTracker(touched.length, this.deps.onProgress, 'unlearn');
    const runner = await UnlearnStepRunner.create(
      layers,
      2 * config.batchSize,
      { learningRate: options.learningRate, weightDecay: config.weightDecay, temperature: options.temperature },
      { intraOpNumThreads: config.threads },
    );
    const updated = new Map<number, EnsembleMember>();
    let steps = 0;
    try {
      for (const shard of touched) {
        const shardRetained = plan.shards[shard].slices.flat().map((i) => retained[i]);
        const position = model.members.indexOf(shard);
        if (shardRetained.length === 0 || position < 0) continue; // nothing left to learn: the shard leaves the ensemble
        const shardForgotten = forgotten.filter((s) => placeSample(config.seed, s.externalId, config.shards, config.slices).shard === shard);
        const result = await unlearnShard(runner, config, options, { shard, retained: shardRetained, forgotten: shardForgotten, weights: members[position].weights });
        updated.set(shard, toMember(result.weights, config));
        steps += result.steps;
        progress.advance();
      }
    } finally {
      await runner.release();
    }
    clock.lap('train');
    const memberShards = model.members.filter((shard) => !touched.includes(shard) || updated.has(shard));
    const newMembers = memberShards.map((shard) => updated.get(shard) ?? members[model.members.indexOf(shard)]);
    const onnx = buildInferenceGraph(layers, newMembers.map((m) => m.weights), config.aggregation, 'none', config.maskedFeatures);
    const onnxSha256 = sha256Hex(onnx);
    clock.lap('export');
    const after = await this.evaluateMembers(config, { members: newMembers }, sets);
    clock.lap('evaluateAfter');
    const fairnessAfter = await fairnessOfPublished({ onnx, onnxSha256 }, request.testSet, request.protectedFeature);
    const metrics = { ...buildPublishedMetrics(after, retained.length, retain.length, testCount), ...(fairnessAfter ? { fairness: fairnessAfter } : {}) };
    const { manifest, manifestHash } = buildManifest({
      modelId: model.modelId,
      version,
      config,
      hyperparamsHash: model.hyperparamsHash,
      shards: [],
      members: memberShards,
      onnxSha256,
      extra: {
        approximate: {
          algorithm: options.algorithm,
          options: approximateOptionsToJson(options),
          fromVersion: model.version,
          fromManifestHash: model.manifestHash,
          shards: touched,
          steps,
          // Its shards' slice count (no shard record says it): the exact versions after it keep every slice.
          slices: slicesOf(model),
        },
      },
    });
    const next: TrainedModel = {
      modelId: model.modelId,
      version,
      config,
      hyperparamsHash: model.hyperparamsHash,
      samples: retained,
      shards: [],
      members: memberShards,
      onnx,
      onnxSha256,
      manifest,
      manifestHash,
      metrics,
    };
    clock.lap('manifest');
    const evidence: ForgetEvidence = { forgottenCount: forgotten.length, retainCount: retained.length, retainEvaluated: retain.length, before, after };
    await this.addSlowEvidence(evidence, model, next, forgotten, sets, request, clock);
    const event: UnlearnCompletedEvent = {
      type: 'UNLEARN_COMPLETED',
      version: 1,
      modelId: model.modelId,
      requestIds: [...request.requestIds],
      affected: [],
      oldOnnxSha256: model.onnxSha256,
      newOnnxSha256: onnxSha256,
      modelVersion: version,
      evidence: {
        ...evidenceToJson(evidence, testCount),
        ...(fairnessAfter ? { fairness: { before: (await fairnessOfPublished(model, request.testSet, request.protectedFeature))!, after: fairnessAfter } } : {}),
      },
      guarantee: { kind: 'approximate', algorithm: options.algorithm, steps },
      ...maskedFeaturesField(model.config),
    };
    const published: ModelPublishedEvent = {
      type: 'MODEL_PUBLISHED',
      version: 1,
      modelId: model.modelId,
      modelVersion: version,
      onnxSha256,
      manifestHash,
      metrics,
      runtime: this.deps.envelope ?? detectRuntimeEnvelope(),
    };
    await this.deps.ledger?.append([published, event]);
    clock.lap('ledger');
    return { model: next, affected: [], event, evidence, steps, timings: forgetTimings(clock) };
  }

  private checkSameModel(before: TrainedModel, after: TrainedModel, what: string): void {
    if (before?.config?.method !== this.name || after?.hyperparamsHash !== before.hyperparamsHash || after.modelId !== before.modelId)
      throw new UnlearningError('INVALID_REQUEST', `${what}: 'after' must be a version of the same ${this.name} model as 'before', with its config`);
  }

  /** The published model's members, in graph order: recent ones from memory, others from the checkpoint store. */
  private async membersOf(model: TrainedModel): Promise<PublishedEnsemble['members']> {
    const layers = layerSizesOf(model.config);
    // An approximate version's weights are nowhere but in its published file.
    if (isApproximateVersion(model)) return readInferenceMembers(model.onnx, layers, model.members.length).map((w) => toMember(w, model.config));
    const members: PublishedEnsemble['members'] = [];
    for (const shard of model.members) {
      const last = lastSlice(model.shards[shard]);
      members.push({ weightsSha256: last.weightsSha256, weights: await this.context.loadMember(this.deps.store, layers, last), ...maskOf(model.config) });
    }
    return members;
  }

  private evaluateMembers(config: TrainingConfig, published: Pick<PublishedEnsemble, 'members'>, sets: EvaluationSets) {
    return this.context.evaluator.evaluate(layerSizesOf(config), config.aggregation, published.members, sets);
  }

  private validateTestSet(testSet: readonly LabeledExample[], config: TrainingConfig): void {
    if (this.validatedTestSets.get(testSet) === testSet.length) return;
    validateExamples(testSet, config);
    this.validatedTestSets.set(testSet, testSet.length);
  }

  async release(): Promise<void> {
    await this.context.release();
  }
}

/** The forget's phases: prepare, evaluateBefore, then buildVersion's, then reference, membership and ledger. */
export function forgetTimings(clock: PhaseClock): ForgetTimings {
  const of = (...phases: string[]) => phases.reduce((sum, phase) => sum + clock.of(phase), 0);
  const phases = { ...clock.seconds };
  return {
    prepare: of('prepare'),
    evaluateBefore: of('evaluateBefore'),
    retrain: of('plan', 'tasks', 'train'),
    publish: of('members', 'export', 'evaluateAfter', 'checkpointWrites', 'manifest'),
    ledger: of('ledger'),
    reference: of('reference'),
    membership: of('membership'),
    total: Object.values(phases).reduce((a, b) => a + b, 0),
    phases,
  };
}

export function allShardsFromScratch(shards: number): Map<number, number> {
  return new Map(Array.from({ length: shards }, (_, shard) => [shard, 0]));
}

export function checkLimit(limit: number | undefined): number {
  const value = limit ?? DEFAULT_EVALUATION_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new UnlearningError('INVALID_REQUEST', `evaluationLimit must be a positive integer, got ${String(limit)}`);
  return value;
}

export function checkModelId(modelId: unknown): void {
  if (typeof modelId !== 'string' || modelId.length === 0 || modelId.length > 200) {
    throw new UnlearningError('INVALID_REQUEST', 'modelId must be a non-empty string of at most 200 characters');
  }
}

/**
 * Validates a forget request against the model's samples; UNKNOWN_SAMPLE lists every id the model never
 * learned. Also gives each old sample's index among the retained ones (-1 if forgotten).
 */
export function splitForget(model: TrainedModel, request: ForgetRequest): { forgotten: Sample[]; retained: Sample[]; newIndexOf: Int32Array } {
  if (
    !request ||
    !Array.isArray(request.requestIds) ||
    request.requestIds.length === 0 ||
    request.requestIds.some((id) => typeof id !== 'string' || id.length === 0)
  ) {
    throw new UnlearningError('INVALID_REQUEST', 'requestIds must be a non-empty array of non-empty strings');
  }
  if (!Array.isArray(request.externalIds) || request.externalIds.length === 0 || request.externalIds.some((id) => typeof id !== 'string')) {
    throw new UnlearningError('INVALID_REQUEST', 'externalIds must be a non-empty array of strings');
  }
  const wanted = new Set(request.externalIds);
  // A handful of ids is found faster by comparing strings than by hashing every sample's id into the Set.
  const few = wanted.size <= 8 ? [...wanted] : undefined;
  const forgotten: Sample[] = [];
  const retained: Sample[] = [];
  const newIndexOf = new Int32Array(model.samples.length);
  for (let index = 0; index < model.samples.length; index++) {
    const sample = model.samples[index];
    if (few ? few.includes(sample.externalId) : wanted.has(sample.externalId)) {
      forgotten.push(sample);
      newIndexOf[index] = -1;
    } else {
      newIndexOf[index] = retained.length;
      retained.push(sample);
    }
  }
  if (forgotten.length < wanted.size) {
    const found = new Set(forgotten.map((s) => s.externalId));
    const unknown = [...wanted].filter((id) => !found.has(id));
    throw new UnlearningError(
      'UNKNOWN_SAMPLE',
      `${unknown.length} sample(s) are not in model ${model.modelId} version ${model.version}: ${unknown.slice(0, 10).join(', ')}`,
      {
        issues: unknown.map((externalId) => ({ externalId, message: 'not a training sample of this model version' })),
      },
    );
  }
  return { forgotten, retained, newIndexOf };
}

/** SISA: each shard holding a forgotten sample restarts at the earliest slice holding one; other shards are untouched. */
export function planSisaForget(model: TrainedModel, forgotten: readonly Sample[]): Map<number, number> {
  const fromSlices = new Map<number, number>();
  for (const sample of forgotten) {
    const { shard, slice } = placeSample(model.config.seed, sample.externalId, model.config.shards, model.config.slices, batchOf(sample));
    fromSlices.set(shard, Math.min(slice, fromSlices.get(shard) ?? slice));
  }
  return fromSlices;
}

/** Full retrain: every shard (there is one) from the first slice, that is, from scratch. */
export function planFullRetrain(model: TrainedModel): Map<number, number> {
  return new Map(model.shards.map((s) => [s.shard, 0]));
}

export function evidenceToJson(evidence: ForgetEvidence, testCount: number): { [key: string]: JsonValue } {
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
  if (evidence.membership) out.membership = evidence.membership;
  return out;
}

/** What publishForget passes on to the forget: the samples, and a test set only for the fairness figures (the evidence itself is measured later, by recordEvidence). */
export function laterForgetRequest(request: PublishForgetRequest): ForgetRequest {
  const { requestIds, externalIds, retrainFromScratch, testSet, protectedFeature } = request ?? ({} as PublishForgetRequest);
  const fairness = protectedFeature !== undefined && testSet ? { testSet, protectedFeature } : {};
  return { requestIds, externalIds, retrainFromScratch, ...fairness };
}

/** A forget's remaining samples' origin: the version before it (weakly: a kept method must not chain every earlier version's samples) and what it removed. */
export interface Derivation {
  from: WeakRef<readonly Sample[]>;
  removed: ReadonlySet<Sample>;
}

/**
 * A method's recordEvidence (UnlearningMethod.recordEvidence): the request checked (after a later version than
 * before, request ids, limit, membership options, test set); the sets measured on (the samples `before` held and
 * `after` does not, the retained evaluation subset, derived from the earlier one when `derivation` says `after` is
 * the method's forget of `before`, and the test set); both versions evaluated (`evaluate`), the reference and
 * attack added when asked (`addSlowEvidence`), and EVIDENCE_RECORDED appended.
 */
export async function recordEvidenceWith(
  deps: Pick<EngineDependencies, 'ledger'>,
  before: TrainedModel,
  after: TrainedModel,
  request: EvidenceRequest,
  method: {
    clock: PhaseClock;
    /** The method's forgets' derivations (remaining samples -> the version before them, weakly, and what was removed); `after`'s is dropped here. */
    derivations: WeakMap<readonly Sample[], Derivation>;
    validateTestSet: (testSet: readonly LabeledExample[]) => void;
    evaluate: (model: TrainedModel, sets: EvaluationSets) => Promise<ModelEvaluation>;
    addSlowEvidence: (evidence: ForgetEvidence, forgotten: readonly Sample[], sets: EvaluationSets) => Promise<void>;
  },
): Promise<RecordedEvidence> {
  const { clock, derivations } = method;
  if (!(after.version > before.version))
    throw new UnlearningError('INVALID_REQUEST', `recordEvidence: 'after' (version ${after.version}) must come after 'before' (version ${before.version})`);
  if (!request || !Array.isArray(request.requestIds) || request.requestIds.length === 0 || request.requestIds.some((id) => typeof id !== 'string' || id.length === 0))
    throw new UnlearningError('INVALID_REQUEST', 'requestIds must be a non-empty array of non-empty strings');
  const limit = checkLimit(request.evaluationLimit);
  if (request.membership) checkMembershipOptions(request.membership);
  if (request.testSet) method.validateTestSet(request.testSet);
  const kept = new Set(after.samples.map((sample) => sample.externalId));
  const forgotten = before.samples.filter((sample) => !kept.has(sample.externalId));
  // The evaluation subset is derived from the earlier one when `after` is this method's forget of `before`.
  const derivation = derivations.get(after.samples);
  const derivedFrom = derivation?.from.deref() === before.samples ? { samples: before.samples, removed: derivation.removed } : undefined;
  derivations.delete(after.samples); // what it removed (the forgotten samples) is not kept past its evidence
  const sets = { retain: selectEvaluationSamples(after.samples, before.config.seed, limit, derivedFrom), forget: forgotten, test: request.testSet };
  clock.lap('prepare');
  const evaluatedBefore = await method.evaluate(before, sets);
  clock.lap('evaluateBefore');
  const evaluatedAfter = await method.evaluate(after, sets);
  clock.lap('evaluateAfter');
  const evidence: ForgetEvidence = {
    forgottenCount: forgotten.length,
    retainCount: after.samples.length,
    retainEvaluated: sets.retain.length,
    before: evaluatedBefore,
    after: evaluatedAfter,
  };
  await method.addSlowEvidence(evidence, forgotten, sets);
  const event: EvidenceRecordedEvent = {
    type: 'EVIDENCE_RECORDED',
    version: 1,
    modelId: after.modelId,
    modelVersion: after.version,
    forgetRequestIds: [...request.requestIds],
    evidence: evidenceToJson(evidence, request.testSet?.length ?? 0),
  };
  await deps.ledger?.append([event]);
  clock.lap('ledger');
  return { evidence, event, timings: { ...clock.seconds } };
}

/** What of a forget request the slow evidence reads: whether to train the reference, the attack's options, the test set. */
export interface SlowEvidenceRequest {
  compareWithRetrain?: boolean;
  membership?: ForgetRequest['membership'];
  testSet?: readonly LabeledExample[];
}

/**
 * The evidence of a forget that costs trainings, added to `evidence` when the request asks for it: the reference
 * (`trainReference`: the method's model trained from scratch on `after`'s samples, evaluated from its own file),
 * then the membership attack on `before` and `after` (measureMembershipInPass). Each is charged to its phase of
 * `clock` ('reference', 'membership'). Shared by every method's inline forget and recordEvidence.
 */
export async function addSlowEvidence(
  method: Pick<UnlearningMethod, 'measureMembership'>,
  deps: Pick<EngineDependencies, 'log'>,
  evidence: ForgetEvidence,
  pair: { before: TrainedModel; after: TrainedModel; forgotten: readonly Sample[] },
  request: SlowEvidenceRequest,
  clock: PhaseClock,
  trainReference: () => Promise<ForgetEvidence['reference']>,
): Promise<void> {
  if (request.compareWithRetrain) {
    evidence.reference = await trainReference();
    clock.lap('reference');
  }
  if (request.membership) {
    evidence.membership = await measureMembershipInPass(method, deps, pair.before, pair.after, pair.forgotten.length, {
      testSet: request.testSet,
      options: request.membership,
    });
    clock.lap('membership');
  }
}

/** The version a forget publishes: the one asked for (after the model's), or the next. */
function checkVersion(model: TrainedModel, version: number | undefined): number {
  const next = version ?? model.version + 1;
  if (!Number.isSafeInteger(next) || next <= model.version)
    throw new UnlearningError('INVALID_REQUEST', `version must be an integer above the model's ${model.version}, got ${String(version)}`);
  return next;
}

/** A version approximate unlearning published (its manifest says so): its weights exist only in its file. */
export function isApproximateVersion(model: TrainedModel): boolean {
  return model.manifest?.approximate !== undefined;
}

/**
 * Slices per shard the version holds: its shard records' count (a learn batch a forget emptied keeps its slice);
 * an approximate version's manifest records the count of the version it came from (one published before the
 * field: at least the slices its samples' learn batches fill).
 */
export function slicesOf(model: TrainedModel): number {
  const filled = model.samples.reduce((n, s) => Math.max(n, model.config.slices + batchOf(s)), model.config.slices);
  if (!isApproximateVersion(model)) return Math.max(filled, ...model.shards.map((s) => s?.slices.length ?? 0));
  const recorded = (model.manifest.approximate as { slices?: JsonValue }).slices;
  return Math.max(filled, typeof recorded === 'number' ? recorded : 0);
}

/** A member with the SHA-256 of its weights as a checkpoint would hold them (the evaluator's cache key). */
function toMember(weights: Weights, config: TrainingConfig): EnsembleMember {
  return { weights, weightsSha256: sha256Hex(serializeWeights(weights)), ...maskOf(config) };
}

/**
 * The membership evidence of a forget in its own pass: an attack that fails does not fail the forget (the
 * erasure is what was asked for); the evidence says it failed and why, and the log says so too.
 */
export async function measureMembershipInPass(
  method: Pick<UnlearningMethod, 'measureMembership'>,
  deps: Pick<EngineDependencies, 'log'>,
  before: TrainedModel,
  after: TrainedModel,
  forgotten: number,
  request: MembershipRequest,
): Promise<MembershipEvidence> {
  try {
    return await method.measureMembership(before, after, request);
  } catch (error) {
    const reason = `the attack failed: ${(error as Error).message}`;
    (deps.log ?? logToStderr)(`model ${before.modelId} version ${after.version}: membership ${reason}`);
    const canaries = request.options.canaries ?? 0;
    return {
      attack: MEMBERSHIP_ATTACK,
      shadowModels: request.options.shadowModels,
      members: { forgotten, canaries },
      nonMembers: { heldOut: Math.min(request.testSet?.length ?? 0, MEMBERSHIP_LIMITS.maxHeldOut), canaries },
      skipped: { reason },
    };
  }
}
