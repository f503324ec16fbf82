// Certified removal (Guo, Goldstein, Hannun, van der Maaten, ICML 2020) as an UnlearningMethod: one-vs-rest
// logistic regression trained on the perturbed objective (certified-training.ts), removals by one Newton step
// with a data-dependent bound on the gradient residual (newton-removal.ts), a retraining from scratch when a
// removal would take the accumulated bound past the budget sigma epsilon / c.
//
// Why TypeScript float64 and not onnxruntime: the solver needs double precision (a gradient norm of 1e-6 per
// sample over thousands of samples is below float32's resolution of the sums), Cholesky factors and inverses
// (no ONNX operator), and sparse rows (MNIST's digits are 81% zeros, which a dense GEMM would multiply
// anyway); every loop runs in a fixed order, so the bits are the same on every IEEE-754 machine and Node
// version. The published model is still the standard ONNX inference graph (inputs projected onto the unit ball,
// one Gemm, softmax over the K one-vs-rest margins), so serving, hashing, verify-model and replay treat it as
// any logistic regression.
import { planShards, rememberPlan, removeFromPlan } from '../assignment';
import { computeSampleBatchRoot, keepShiftedTree } from '../batch-root';
import { MemoryCheckpointStore } from '../checkpoint-store';
import { hashHyperparameters, layerSizesOf, normalizeConfig, TrainingConfig } from '../config';
import { UnlearningError } from '../errors';
import { buildPublishedMetrics, evaluateModel, EvaluationSets, ModelEvaluation, selectEvaluationSamples } from '../evidence';
import { fairnessOfPublished } from '../fairness';
import { BatchLearnedEvent, CheckpointSavedEvent, EngineEvent, ModelPublishedEvent, UnlearnCompletedEvent } from '../events';
import { sha256Hex } from '../hash';
import { buildInferenceGraph } from '../inference-graph';
import { LruMap } from '../lru';
import { buildManifest } from '../manifest';
import type { MembershipEvidence } from '@lethe/events';
import { serializeWeights } from '../architecture';
import { DEFAULT_MEMBER_CACHE, EnsembleEvaluator } from '../ensemble-evaluator';
import { AttackedModel, MembershipEngine } from '../membership/engine';
import { measureMembership } from '../membership/measure';
import {
  EvidenceRequest,
  ForgetEvidence,
  ForgetOutcome,
  ForgetRequest,
  ForgetTimings,
  MembershipRequest,
  PublishedForget,
  PublishForgetRequest,
  RecordedEvidence,
  TrainRequest,
  UnlearningMethod,
} from '../method';
import { SliceRecord, TrainedModel } from '../model';
import { PhaseClock } from '../phase-clock';
import { ProgressPhase, ProgressTracker } from '../progress';
import { detectRuntimeEnvelope, RuntimeEnvelope } from '../runtime-envelope';
import { compactFeatures, LabeledExample, Sample } from '../samples';
import {
  addSlowEvidence,
  checkLimit,
  checkModelId,
  Derivation,
  evidenceToJson,
  laterForgetRequest,
  recordEvidenceWith,
  SlowEvidenceRequest,
  splitForget,
} from '../sharded-method';
import { checkMembershipOptions } from '../membership/options';
import { addressCheckpoint, EngineDependencies, genesisCheckpoint } from '../sharded-training';
import { checkEnoughData, validateExamples, validateSamples } from '../validate';
import { CertifiedSettings, residualBudget } from './certified-settings';
import {
  addressCertifiedRemoval,
  allocateCertifiedState,
  CertifiedLedgerState,
  certifiedManifestPart,
  CertifiedState,
  deserializeCertifiedState,
  readCertifiedManifest,
  serializeCertifiedState,
} from './certified-state';
import { drawObjectiveNoise, fitCertified, prepareRemovalOperators, RemovalOperator, trainingTolerance } from './certified-training';
import { computeNewtonRemoval, NewtonRemoval, rehearseNewtonRemoval, warmUpNewtonRemoval } from './newton-removal';
import { buildOvrData } from './ovr-data';
import { Yielder } from './yield';
import { accumulateGram, computeGram } from './ovr-objective';

/** Certified removal's method, with a way to wait for the preparation it runs after each publication. */
export interface CertifiedUnlearningMethod extends UnlearningMethod {
  publishForget(model: TrainedModel, request: PublishForgetRequest): Promise<PublishedForget>;
  recordEvidence(before: TrainedModel, after: TrainedModel, request: EvidenceRequest): Promise<RecordedEvidence>;
  /** Resolves once every preparation started so far (a published version's Hessians and inverses) has ended, failed or not. */
  prepared(): Promise<void>;
}

/**
 * Certified removal: one-vs-rest logistic regression, Newton-step removals within an (epsilon, delta) budget.
 * `prepareOperators` (default true): make each version's Hessians and their inverses once it is published, in
 * the background (train and forget return with the version published, not prepared), so that its next removal
 * is fast; a removal that comes before they are ready waits for them, and without it the removal makes them first.
 */
export function createCertifiedMethod(deps: EngineDependencies, options: { prepareOperators?: boolean } = {}): CertifiedUnlearningMethod {
  return new CertifiedMethod(deps, options.prepareOperators ?? true);
}

/** A version's state and the operators its next removal solves with (kept in memory only, see operatorsOf). */
interface KeptState {
  state: CertifiedState;
  operators?: Promise<RemovalOperator[]>;
}

/** A version about to be published: its lineage record, state, events so far and how it was made. */
interface BuiltState {
  record: SliceRecord;
  state: CertifiedState;
  events: EngineEvent[];
  ledger: CertifiedLedgerState;
  /** L-BFGS (and Newton) iterations of a training, conjugate-gradient iterations of a removal. */
  steps: number;
}

class CertifiedMethod implements CertifiedUnlearningMethod {
  readonly name = 'certified' as const;
  /** Recent versions' states by checkpoint address (the latest of each model is what its next removal needs). */
  private readonly kept = new LruMap<string, KeptState>(2);
  /** Preparations running after a publication (prepareInBackground); release and prepared wait for them. */
  private readonly preparing = new Set<Promise<void>>();
  private readonly validatedTestSets = new WeakMap<readonly LabeledExample[], number>();
  /** A removal's remaining samples: the samples they came from and those removed (recordEvidence derives its evaluation subset from the earlier one). */
  private readonly derivations = new WeakMap<readonly Sample[], Derivation>();

  /**
   * `prepareOperators`: make a version's Hessians and their inverses as soon as it is published (its next removal is then fast);
   * off for the membership attack's evaluation models, most of which are never unlearned from.
   */
  constructor(
    private readonly deps: EngineDependencies,
    private readonly prepareOperators = true,
  ) {}

  async train(request: TrainRequest): Promise<TrainedModel> {
    const config = normalizeConfig(request.config);
    if (config.method !== 'certified') throw new UnlearningError('INVALID_CONFIG', `config.method is '${config.method}', this method is 'certified'`);
    checkModelId(request.modelId);
    const version = request.version ?? 1;
    if (!Number.isSafeInteger(version) || version < 1) throw new UnlearningError('INVALID_REQUEST', `version must be a positive integer, got ${String(version)}`);
    const limit = checkLimit(request.evaluationLimit);
    validateSamples(request.samples, config);
    checkEnoughData(request.samples, config);
    checkCertifiedTraining(settingsOf(config), request.samples.length);
    if (request.testSet) this.validateTestSet(request.testSet, config);
    const samples = compactFeatures(request.samples);
    const hyperparamsHash = hashHyperparameters(config);
    const context = { modelId: request.modelId, version, config, hyperparamsHash };
    const built = await this.buildTrained(context, samples, 'train');
    const sets = { retain: selectEvaluationSamples(samples, config.seed, limit), forget: [], test: request.testSet };
    const { model, event } = await this.publish(context, samples, built, sets, request.protectedFeature);
    await this.deps.ledger?.append([...built.events, event]);
    this.prepareInBackground(model);
    return model;
  }

  forget(model: TrainedModel, request: ForgetRequest): Promise<ForgetOutcome> {
    return this.forgetWith(model, request, 'inline') as Promise<ForgetOutcome>;
  }

  /** The removal published before anything is evaluated (UnlearningMethod.publishForget); recordEvidence measures its evidence after. */
  publishForget(model: TrainedModel, request: PublishForgetRequest): Promise<PublishedForget> {
    return this.forgetWith(model, laterForgetRequest(request), 'later');
  }

  /** A removal, its evidence measured inside it ('inline') or after its version is published ('later': recordEvidence). */
  private async forgetWith(model: TrainedModel, request: ForgetRequest, evidenceAt: 'inline' | 'later'): Promise<PublishedForget & { evidence?: ForgetEvidence }> {
    const clock = new PhaseClock();
    if (model?.config?.method !== 'certified') {
      throw new UnlearningError('INVALID_REQUEST', `model ${model?.modelId} was trained by '${model?.config?.method}', not 'certified'`);
    }
    const { forgotten, retained, newIndexOf } = splitForget(model, request);
    // The remaining samples keep their canonical order: their plan is the model's without the removed ones (no hashing).
    rememberPlan(retained, model.config.seed, 1, 1, removeFromPlan(planShards(model.samples, model.config.seed, 1, 1), newIndexOf));
    const limit = checkLimit(request.evaluationLimit);
    if (request.membership) checkMembershipOptions(request.membership);
    checkEnoughData(retained, model.config);
    if (request.testSet) this.validateTestSet(request.testSet, model.config);
    const settings = settingsOf(model.config);
    const previous = readCertifiedManifest(model.manifest, model.modelId, model.version);
    const derivation = { from: new WeakRef(model.samples), removed: new Set(forgotten) };
    this.derivations.set(retained, derivation);
    // Published first ('later'): nothing is evaluated before the new version is.
    const sets: EvaluationSets | undefined =
      evidenceAt === 'later'
        ? undefined
        : { retain: selectEvaluationSamples(retained, model.config.seed, limit, { samples: model.samples, removed: derivation.removed }), forget: forgotten, test: request.testSet };
    const context = { modelId: model.modelId, version: model.version + 1, config: model.config, hyperparamsHash: model.hyperparamsHash };
    clock.lap('prepare');
    let before: ModelEvaluation | undefined;
    if (sets) {
      before = await evaluateModel(model.onnx, model.onnxSha256, sets, this.deps.runtime);
      clock.lap('evaluateBefore');
    }

    let step: NewtonRemoval | undefined;
    let built: BuiltState | undefined;
    if (!request.retrainFromScratch) {
      const operators = await this.operatorsOf(model);
      clock.lap('operators');
      const state = await this.stateOf(model);
      const removed = buildOvrData(inCanonicalOrder(forgotten, model.config.seed), model.config.numFeatures, model.config.numClasses);
      // The new version's state, w⁻ and the downdated Gram matrix, computed in place of the bytes it is stored as.
      const kept = allocateCertifiedState(model.config.numFeatures, model.config.numClasses);
      kept.gram.set(state.gram);
      accumulateGram(removed, kept.gram, -1);
      step = await computeNewtonRemoval({ keptCount: retained.length, removed, w: state.w, lambda: settings.lambda, operators, keptGram: kept.gram, into: kept.w });
      clock.lap('newton');
      const budgetUsed = previous.budgetUsed + step.residualBound;
      if (budgetUsed <= previous.budget) {
        built = await this.buildNewtonVersion(context, model, retained, forgotten, kept, previous, step);
      } else {
        this.log(
          `model ${model.modelId} version ${context.version}: a Newton step's residual bound ${step.residualBound.toPrecision(4)} would take the budget ` +
            `used to ${budgetUsed.toPrecision(4)}, past ${previous.budget.toPrecision(4)}: retrained from scratch without the ${forgotten.length} sample(s) (the budget restarts)`,
        );
      }
      clock.lap('version');
    }
    if (!built) {
      built = await this.buildTrained(context, retained, 'unlearn');
      clock.lap('retrain');
    }
    const retrained = built.ledger.removals === 0;
    let after: ModelEvaluation | undefined;
    const { model: next, event: published } = await this.publish(context, retained, built, sets, request.protectedFeature, request.testSet, (evaluation) => (after = evaluation));
    clock.lap('publish');

    let evidence: ForgetEvidence | undefined;
    if (sets) {
      evidence = { forgottenCount: forgotten.length, retainCount: retained.length, retainEvaluated: sets.retain.length, before: before!, after: after! };
      await this.addSlowEvidence(evidence, model, next, forgotten, sets, request, clock);
    }
    const testCount = request.testSet?.length ?? 0;
    const event: UnlearnCompletedEvent = {
      type: 'UNLEARN_COMPLETED',
      version: 1,
      modelId: model.modelId,
      requestIds: [...request.requestIds],
      affected: retrained ? [{ shard: 0, fromSlice: 0 }] : [],
      oldOnnxSha256: model.onnxSha256,
      newOnnxSha256: next.onnxSha256,
      modelVersion: next.version,
      evidence: {
        ...(evidence ? evidenceToJson(evidence, testCount) : { forgottenCount: forgotten.length, retainCount: retained.length, recordedIn: 'EVIDENCE_RECORDED' }),
        ...(next.metrics.fairness !== undefined
          ? { fairness: { before: (await fairnessOfPublished(model, request.testSet, request.protectedFeature))!, after: next.metrics.fairness } }
          : {}),
      },
      guarantee: {
        kind: 'certified',
        epsilon: settings.epsilon,
        delta: settings.delta,
        residualBound: step?.residualBound ?? 0,
        budget: built.ledger.budget,
        budgetUsed: built.ledger.budgetUsed,
        retrained,
      },
    };
    await this.deps.ledger?.append([...built.events, published, event]);
    clock.lap('ledger');
    // The old version's state and operators are a function of weights that learned the samples: dropped now. The
    // next removal's, at the new weights on the remaining data, are made once the version is published.
    this.kept.delete(model.shards[0].slices[0].checkpoint);
    this.prepareInBackground(next);
    return { model: next, affected: event.affected, event, ...(evidence ? { evidence } : {}), steps: built.steps, timings: certifiedTimings(clock) };
  }

  /**
   * The evidence of a removal publishForget published, from `before` to `after` (its model), logged as
   * EVIDENCE_RECORDED: the figures an inline forget puts in its UNLEARN_COMPLETED (accuracies before and after from
   * the published files, the loss-threshold AUC, and the reference and membership attack when asked for).
   */
  async recordEvidence(before: TrainedModel, after: TrainedModel, request: EvidenceRequest): Promise<RecordedEvidence> {
    const clock = new PhaseClock();
    checkSameModel(before, after, 'recordEvidence');
    return recordEvidenceWith(this.deps, before, after, request, {
      clock,
      derivations: this.derivations,
      validateTestSet: (testSet) => this.validateTestSet(testSet, before.config),
      // From the published files, as the inline forget measures them.
      evaluate: (model, sets) => evaluateModel(model.onnx, model.onnxSha256, sets, this.deps.runtime),
      addSlowEvidence: (evidence, forgotten, sets) => this.addSlowEvidence(evidence, before, after, forgotten, sets, request, clock),
    });
  }

  /** The evidence that costs trainings, when asked for (addSlowEvidence): the reference retrained from scratch without the samples, and the membership attack. */
  private addSlowEvidence(
    evidence: ForgetEvidence,
    before: TrainedModel,
    after: TrainedModel,
    forgotten: readonly Sample[],
    sets: EvaluationSets,
    request: SlowEvidenceRequest,
    clock: PhaseClock,
  ): Promise<void> {
    const context = { modelId: after.modelId, version: after.version, config: after.config, hyperparamsHash: after.hyperparamsHash };
    return addSlowEvidence(this, this.deps, evidence, { before, after, forgotten }, request, clock, () => this.trainReference(context, after.samples, sets));
  }

  async measureMembership(before: TrainedModel, after: TrainedModel, request: MembershipRequest): Promise<MembershipEvidence> {
    checkSameModel(before, after, 'membership');
    if (request.testSet) this.validateTestSet(request.testSet, before.config);
    const engine = this.membershipEngine(before.config);
    try {
      return await measureMembership(engine, { before, after, testSet: request.testSet, options: request.options, onProgress: this.deps.onProgress });
    } finally {
      await engine.release();
    }
  }

  async release(): Promise<void> {
    await this.prepared();
    this.kept.clear();
    await this.kept.settled();
  }

  async prepared(): Promise<void> {
    while (this.preparing.size > 0) await Promise.all(this.preparing);
  }

  /**
   * Starts making a just-published version's operators (operatorsOf) without waiting for them: the version is
   * served meanwhile, and its next removal awaits them (the 'operators' phase) if it comes first. A failure leaves
   * none kept (operatorsOf), so that removal makes them again and meets the error itself.
   */
  private prepareInBackground(model: TrainedModel): void {
    if (!this.prepareOperators) return;
    // Started on the event loop's next turn, once the caller has the published version: the preparation's first,
    // synchronous part (the samples' rows, ~0.1 s of CPU on 9,000 digits) is not charged to the call that returns.
    // A version no longer kept by then (superseded or evicted) needs none.
    const checkpoint = model.shards[0].slices[0].checkpoint;
    const preparation = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => (this.kept.get(checkpoint) ? this.operatorsOf(model, true) : undefined))
      .then(
        () => undefined,
        () => undefined,
      );
    this.preparing.add(preparation);
    void preparation.then(() => this.preparing.delete(preparation));
  }

  /**
   * The membership attack's view of certified removal (membership/engine.ts): published versions as they are,
   * evaluation models trained and unlearned by a method of their own (in memory, never logged). Shadow models and
   * the reference (another seed than the model's) draw their noise from a seed derived from theirs, never from the
   * model's secret: an attacker does not know B. A copy with the model's seed (the canary copy) uses its noise.
   */
  private membershipEngine(attacked: TrainingConfig): MembershipEngine {
    const evaluator = new EnsembleEvaluator(this.deps.runtime, DEFAULT_MEMBER_CACHE, 'unit-ball');
    const quiet = new CertifiedMethod({ ...this.deps, store: new MemoryCheckpointStore(), ledger: undefined, onProgress: undefined, log: () => undefined }, false);
    const noiseFor = (config: TrainingConfig): TrainingConfig =>
      config.seed === attacked.seed
        ? config
        : { ...config, certified: { ...settingsOf(config), noiseSeed: sha256Hex('lethe-membership-noise|', config.seed) } };
    return {
      evaluator,
      attackable: (model) => this.attackable(model),
      train: async (config, samples) => {
        const model = await quiet.train({ modelId: 'lethe-membership-evaluation', config: noiseFor(config), samples });
        return quiet.attackable(model);
      },
      forget: async ({ model }, forgotten) => {
        const outcome = await quiet.forget(model, { requestIds: ['lethe-membership-evaluation'], externalIds: forgotten.map((s) => s.externalId) });
        return quiet.attackable(outcome.model);
      },
      release: async () => {
        await evaluator.release();
        await quiet.release();
      },
    };
  }

  /** A version as the attack queries it: its one member, the weights the published file holds. */
  private async attackable(model: TrainedModel): Promise<AttackedModel> {
    const weights = [Float32Array.from((await this.stateOf(model)).w), new Float32Array(model.config.numClasses)];
    return { model, members: new Map([[0, { weights, weightsSha256: sha256Hex(serializeWeights(weights)) }]]) };
  }

  /**
   * Trains on `samples` from scratch (a first training, or a retraining once the budget runs out): the same
   * bits whichever way it was reached, since the samples are ordered by key and the noise comes from the seed.
   */
  private async buildTrained(context: VersionContext, samples: readonly Sample[], phase: ProgressPhase): Promise<BuiltState> {
    const { config, hyperparamsHash } = context;
    const settings = settingsOf(config);
    const ordered = inCanonicalOrder(samples, config.seed);
    const batchRoot = computeSampleBatchRoot(ordered, { keepTree: true });
    const data = buildOvrData(ordered, config.numFeatures, config.numClasses);
    const progress = new ProgressTracker(100, this.deps.onProgress, phase);
    let reported = 0;
    const fit = await fitCertified({ data, lambda: settings.lambda, noise: drawObjectiveNoise(settings, data.d, data.k) }, (fraction) => {
      const units = Math.floor(fraction * 100);
      if (units > reported) progress.advance(units - reported);
      reported = Math.max(reported, units);
    });
    progress.finish();
    const state = { w: fit.w, gram: computeGram(data) };
    const envelope = this.envelope();
    const genesis = genesisCheckpoint(envelope, hyperparamsHash, 0);
    const checkpoint = addressCheckpoint(envelope, hyperparamsHash, 0, 0, genesis, batchRoot);
    const record = await this.storeState(checkpoint, state, samples.length, batchRoot);
    const learned: BatchLearnedEvent = {
      type: 'BATCH_LEARNED',
      version: 1,
      modelId: context.modelId,
      modelVersion: context.version,
      shard: 0,
      slice: 0,
      batchRoot,
      count: samples.length,
      parentCheckpoint: null,
      checkpoint,
      hyperparamsHash,
    };
    const budget = residualBudget(settings);
    return {
      record,
      state,
      events: [learned, this.checkpointSaved(context, record, state)],
      ledger: { budget, budgetUsed: trainingTolerance(samples.length), trainedVersion: context.version, removals: 0 },
      steps: fit.iterations,
    };
  }

  /** The version a Newton step made: its state (w⁻ and the downdated Gram matrix) stored, its budget spent. */
  private async buildNewtonVersion(
    context: VersionContext,
    model: TrainedModel,
    retained: readonly Sample[],
    forgotten: readonly Sample[],
    state: CertifiedState,
    previous: CertifiedLedgerState,
    step: NewtonRemoval,
  ): Promise<BuiltState> {
    const parent = model.shards[0].slices[0];
    const removedBatchRoot = computeSampleBatchRoot(inCanonicalOrder(forgotten, model.config.seed));
    const checkpoint = addressCertifiedRemoval(this.envelope(), context.hyperparamsHash, parent.checkpoint, removedBatchRoot);
    // The remaining samples' tree shares every subtree before the first removed sample with the version's.
    const batchRoot = computeSampleBatchRoot(inCanonicalOrder(retained, model.config.seed), { derivedFrom: inCanonicalOrder(model.samples, model.config.seed), keepTree: true });
    const record = await this.storeState(checkpoint, state, retained.length, batchRoot);
    return {
      record,
      state,
      events: [this.checkpointSaved(context, record, state)],
      ledger: {
        budget: previous.budget,
        budgetUsed: previous.budgetUsed + step.residualBound,
        trainedVersion: previous.trainedVersion,
        removals: previous.removals + 1,
        step: { parentCheckpoint: parent.checkpoint, removedBatchRoot, removed: forgotten.length, residualBound: step.residualBound },
      },
      steps: step.iterations,
    };
  }

  /** The published version: the ONNX file of w rounded to float32, its metrics on `sets`, its manifest and MODEL_PUBLISHED. */
  /**
   * `sets` undefined: published before its evidence (publishForget), its metrics the sample count (and fairness on
   * `fairnessSet` when the dataset has a protected column).
   */
  private async publish(
    context: VersionContext,
    samples: readonly Sample[],
    built: BuiltState,
    sets: EvaluationSets | undefined,
    protectedFeature?: number,
    fairnessSet = sets?.test,
    onEvaluation?: (evaluation: ModelEvaluation) => void,
  ): Promise<{ model: TrainedModel; event: ModelPublishedEvent }> {
    const { config } = context;
    const layers = layerSizesOf(config);
    const onnx = buildInferenceGraph(layers, [[Float32Array.from(built.state.w), new Float32Array(config.numClasses)]], 'mean', 'unit-ball');
    const onnxSha256 = sha256Hex(onnx);
    const evaluation = sets && (await evaluateModel(onnx, onnxSha256, sets, this.deps.runtime));
    if (evaluation) onEvaluation?.(evaluation);
    const fairness = await fairnessOfPublished({ onnx, onnxSha256 }, fairnessSet, protectedFeature);
    const measured = sets && evaluation ? buildPublishedMetrics(evaluation, samples.length, sets.retain.length, sets.test?.length ?? 0) : { samples: samples.length };
    const metrics = { ...measured, ...(fairness ? { fairness } : {}) };
    const shards = [{ shard: 0, sampleCount: samples.length, slices: [built.record] }];
    const { manifest, manifestHash } = buildManifest({
      modelId: context.modelId,
      version: context.version,
      config,
      hyperparamsHash: context.hyperparamsHash,
      shards,
      members: [0],
      onnxSha256,
      extra: certifiedManifestPart(built.ledger),
    });
    const model: TrainedModel = {
      modelId: context.modelId,
      version: context.version,
      config,
      hyperparamsHash: context.hyperparamsHash,
      samples,
      shards,
      members: [0],
      onnx,
      onnxSha256,
      manifest,
      manifestHash,
      metrics,
    };
    const event: ModelPublishedEvent = {
      type: 'MODEL_PUBLISHED',
      version: 1,
      modelId: context.modelId,
      modelVersion: context.version,
      onnxSha256,
      manifestHash,
      metrics,
      runtime: this.envelope(),
    };
    return { model, event };
  }

  /** A model trained from scratch without the samples, with its own store, evaluated from its own ONNX file. */
  private async trainReference(context: VersionContext, retained: readonly Sample[], sets: EvaluationSets): Promise<ForgetEvidence['reference']> {
    const reference = new CertifiedMethod({ ...this.deps, store: new MemoryCheckpointStore(), ledger: undefined, onProgress: undefined }, false);
    const built = await reference.buildTrained(context, retained, 'reference');
    const { model } = await reference.publish(context, retained, built, { retain: [], forget: [] });
    const evaluation = await evaluateModel(model.onnx, model.onnxSha256, sets, this.deps.runtime);
    return { ...evaluation, onnxSha256: model.onnxSha256 };
  }

  /**
   * The version's Hessians and their inverses, from memory or computed (O(n d^2 K + d^3 K)). They are a function of the version's own
   * weights and samples only, and are never written anywhere: when the version is superseded they go with it.
   * `afterPublication`: made ahead of any removal (the version just published), so the preparation also runs the
   * step a few times on the version's first sample (warmUpNewtonRemoval), and the next removal finds it compiled,
   * and keeps the shifted tree of the version's batch (keepShiftedTree) for the next removal's batch root.
   */
  private async operatorsOf(model: TrainedModel, afterPublication = false): Promise<RemovalOperator[]> {
    const record = model.shards[0].slices[0];
    const state = await this.stateOf(model);
    const kept = this.kept.get(record.checkpoint) as KeptState;
    if (!kept.operators) {
      const data = buildOvrData(inCanonicalOrder(model.samples, model.config.seed), model.config.numFeatures, model.config.numClasses);
      const { lambda } = settingsOf(model.config);
      // After a publication, the removal's code is rehearsed first (its compilation then runs beside the Hessians').
      const rehearsed = afterPublication ? rehearseRemoval(model, 'start') : Promise.resolve();
      kept.operators = rehearsed.then(async () => {
        const operators = await prepareRemovalOperators(data, lambda, state.w);
        if (afterPublication) {
          await warmUpNewtonRemoval(data, state.w, lambda, operators, state.gram);
          // The tree of the version's samples without the first: the batch root of a removal of one sample is then
          // made of the kept subtrees and about log2 n hashes (computeSampleBatchRoot), not about n - position.
          keepShiftedTree(inCanonicalOrder(model.samples, model.config.seed));
          await rehearseRemoval(model, 'end');
        }
        return operators;
      });
      kept.operators.catch(() => (kept.operators = undefined));
    }
    return kept.operators;
  }

  /** The version's state: from memory, or from the store with its SHA-256 checked. */
  private async stateOf(model: TrainedModel): Promise<CertifiedState> {
    const record = model.shards[0]?.slices[0];
    if (!record) throw new UnlearningError('RUNTIME_ERROR', `model ${model.modelId} version ${model.version} has no certified state`);
    const kept = this.kept.get(record.checkpoint);
    if (kept) return kept.state;
    const bytes = await this.deps.store.get(record.checkpoint);
    if (!bytes) throw new UnlearningError('CHECKPOINT_MISSING', `checkpoint ${record.checkpoint} is not in the store`);
    const actual = sha256Hex(bytes);
    if (actual !== record.weightsSha256)
      throw new UnlearningError('CHECKPOINT_CORRUPT', `checkpoint ${record.checkpoint} has SHA-256 ${actual}, expected ${record.weightsSha256}`, {
        expectedSha256: record.weightsSha256,
        actualSha256: actual,
      });
    const state = deserializeCertifiedState(bytes, model.config.numFeatures, model.config.numClasses);
    this.kept.set(record.checkpoint, { state });
    return state;
  }

  private async storeState(checkpoint: string, state: CertifiedState, count: number, batchRoot: string): Promise<SliceRecord> {
    const bytes = serializeCertifiedState(state);
    await this.deps.store.put(checkpoint, bytes);
    this.kept.set(checkpoint, { state });
    return { slice: 0, count, batchRoot, checkpoint, weightsSha256: sha256Hex(bytes) };
  }

  private checkpointSaved(context: VersionContext, record: SliceRecord, state: CertifiedState): CheckpointSavedEvent {
    return {
      type: 'CHECKPOINT_SAVED',
      version: 1,
      modelId: context.modelId,
      shard: 0,
      slice: 0,
      checkpoint: record.checkpoint,
      bytes: (state.w.length + state.gram.length) * 8,
      weightsSha256: record.weightsSha256,
    };
  }

  private envelope(): RuntimeEnvelope {
    return this.deps.envelope ?? detectRuntimeEnvelope();
  }

  private log(message: string): void {
    (this.deps.log ?? ((m: string) => process.stderr.write(`lethe-unlearning: ${m}\n`)))(message);
  }

  private validateTestSet(testSet: readonly LabeledExample[], config: TrainingConfig): void {
    if (this.validatedTestSets.get(testSet) === testSet.length) return;
    validateExamples(testSet, config);
    this.validatedTestSets.set(testSet, testSet.length);
  }
}

/**
 * A removal's phases: prepare, evaluateBefore, operators (the version's Hessians and inverses, unless in memory or
 * waiting for their preparation), newton (the step and its bound), version (the new state: its batch root, stored)
 * or retrain, publish, reference, ledger (the new version's operators are then prepared in the background). `retrain` in the result is the step or the retraining with its operators.
 */
function certifiedTimings(clock: PhaseClock): ForgetTimings {
  const phases = { ...clock.seconds };
  return {
    prepare: clock.of('prepare'),
    evaluateBefore: clock.of('evaluateBefore'),
    retrain: clock.of('operators') + clock.of('newton') + clock.of('version') + clock.of('retrain'),
    publish: clock.of('publish'),
    ledger: clock.of('ledger'),
    reference: clock.of('reference'),
    membership: clock.of('membership'),
    total: Object.values(phases).reduce((a, b) => a + b, 0),
    phases,
    cpuPhases: { ...clock.cpuSeconds },
  };
}

interface VersionContext {
  modelId: string;
  version: number;
  config: TrainingConfig;
  hyperparamsHash: string;
}

function checkSameModel(before: TrainedModel, after: TrainedModel, what: string): void {
  if (before?.config?.method !== 'certified' || after?.hyperparamsHash !== before.hyperparamsHash || after.modelId !== before.modelId)
    throw new UnlearningError('INVALID_REQUEST', `${what}: 'after' must be a version of the same certified model as 'before', with its config`);
}

function settingsOf(config: TrainingConfig): CertifiedSettings {
  if (!config.certified) throw new UnlearningError('INVALID_CONFIG', "method 'certified' needs certified settings");
  return config.certified;
}

/**
 * What training on n samples needs of the settings: delta below 1/n (a delta of 1/n or more allows giving one
 * sample away outright), and a budget above the training's own gradient tolerance (which it starts with used).
 */
export function checkCertifiedTraining(settings: CertifiedSettings, n: number): void {
  if (settings.delta >= 1 / n)
    throw new UnlearningError('INVALID_CONFIG', `certified.delta must be below 1/n = 1/${n} (n: the training samples), got ${settings.delta}`);
  const budget = residualBudget(settings);
  if (budget <= trainingTolerance(n))
    throw new UnlearningError(
      'INVALID_CONFIG',
      `certified budget sigma epsilon / c = ${budget.toPrecision(4)} is below the training's gradient tolerance 1e-6 n = ${Number(trainingTolerance(n).toPrecision(4))}: raise certified.sigma or certified.epsilon`,
    );
}

/** How many times rehearseRemoval runs a removal's bookkeeping: at the start of a preparation (its batch root hashed from the leaves), at its end (from the kept trees). */
const REHEARSED_REMOVALS = { start: 3, end: 8 };

/**
 * Parts of a version's preparation, run and discarded: at its start, the Newton step on a made-up problem
 * (rehearseNewtonRemoval); at its start and at its end (once the shifted tree is kept), the bookkeeping of a
 * removal of one sample from the version (the split, the plan without it, its order and rows, the survivors'
 * batch root). V8 compiles these with optimisation once they have run a few times, on its worker threads: started
 * here, that work runs within the preparation, where it otherwise ran during the next removal (10-50 ms of CPU
 * charged to it on the methods bench, the more the busier the machine). Nothing is remembered: no plan, tree, order
 * or state of the survivors is kept.
 */
async function rehearseRemoval(model: TrainedModel, at: 'start' | 'end'): Promise<void> {
  if (at === 'start') await rehearseNewtonRemoval(model.config.numClasses);
  const ordered = inCanonicalOrder(model.samples, model.config.seed);
  if (ordered.length < 3) return;
  const sample = ordered[ordered.length >> 1];
  const yielder = new Yielder();
  for (let run = 0; run < REHEARSED_REMOVALS[at]; run++) {
    await yielder.maybeYield();
    const { forgotten, newIndexOf } = splitForget(model, { requestIds: ['lethe-warm-up'], externalIds: [sample.externalId] });
    removeFromPlan(planShards(model.samples, model.config.seed, 1, 1), newIndexOf);
    buildOvrData(inCanonicalOrder(forgotten, model.config.seed), model.config.numFeatures, model.config.numClasses);
    computeSampleBatchRoot(ordered.filter((s) => s !== sample), { derivedFrom: ordered });
  }
}

/**
 * The samples in the engine's canonical order (by SHA-256("lethe-assign|" seed 0x00 externalId)): sums run in it.
 * The same array for the same samples (a version's), so that what is kept by it (its batch's tree) is found again.
 */
function inCanonicalOrder<T extends Sample>(samples: readonly T[], seed: string): readonly T[] {
  const known = canonicalOrders.get(samples);
  if (known && known.seed === seed && known.count === samples.length) return known.ordered as readonly T[];
  const ordered = planShards(samples, seed, 1, 1).shards[0].slices[0].map((i) => samples[i]);
  canonicalOrders.set(samples, { seed, count: samples.length, ordered });
  return ordered;
}

const canonicalOrders = new WeakMap<readonly Sample[], { seed: string; count: number; ordered: readonly Sample[] }>();
