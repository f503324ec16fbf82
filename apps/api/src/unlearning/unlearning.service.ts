import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager, In } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import type { ApproximateAlgorithm, UnlearnHeld, VersionRetired } from '@lethe/events';
import { ForgetRequest, JsonValue, Progress, TrainedModel } from '@lethe/unlearning';
import { DatasetVersionService } from '../datasets/dataset-version.service';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { tryWithDatasetLock, withDatasetLock } from '../models/dataset.lock';
import { HeldFigures, ModelEntity, ModelVersionEntity } from '../models/model.entity';
import { checkGuard } from '../models/model-guard';
import { guardOf } from '../models/model-lifecycle.dto';
import { buildEvidenceRequest, buildFairnessRequest, buildForgetRequest } from '../models/model-evaluation';
import { ModelLedgerSink } from '../models/model-ledger.sink';
import { KeptMethods } from '../models/kept-methods';
import { ModelStore, VersionRecord } from '../models/model.store';
import { ModelTrainingService } from '../models/model-training.service';
import { OpenedSamples } from '../models/opened-samples';
import { modelDoneFraction } from '../models/model.progress';
import { ForgetSteps } from '../forget-requests/forget-steps';
import { PassClock, PassTimings } from './pass-clock';
import { RestoreService } from './restore.service';
import { FailedModel, RetirementService } from './retirement.service';
import { FeatureUnlearningService } from './feature-unlearning.service';

export interface UnlearningPassResult {
  requestIds: string[];
  modelVersions: { modelId: string; version: number }[];
  /** Models that could not unlearn the requests (now `failed`, serving nothing); absent when none. */
  failedModels?: FailedModel[];
  /** Why the requests failed (they are `failed`); absent when they completed. */
  error?: string;
  /** Where the pass's time went. */
  timings: PassTimings;
  /** Suspended requests the pass restored (their samples learned again); absent when none. */
  restoredRequestIds?: string[];
  /** Restores that cannot be done (the requests stay suspended); absent when none. */
  refusedRestores?: { requestId: string; error: string }[];
}

/** Done fraction (0..1) of a whole pass and its estimated seconds left. */
export type PassProgressCallback = (progress: { fraction: number; etaSeconds: number | null }) => void;

export interface UnlearningPassOptions {
  /** The pass's row in `jobs`; the requests it takes point at it. */
  jobId?: string;
  onProgress?: PassProgressCallback;
  /**
   * Called once the pass holds the dataset, before it takes the waiting requests (the worker claims its job here),
   * in the transaction that takes them: both are one commit.
   */
  onLocked?: (manager: EntityManager) => Promise<void>;
  /** No retry follows: an error fails the requests instead of leaving them for the next attempt. */
  lastAttempt?: boolean;
  /** The pass's clock, started when its worker received the job (a new one otherwise). */
  clock?: PassClock;
  /**
   * Whether to look in the log for what a stopped pass left half done in each model (its next version logged
   * but not recorded) before forgetting: crash recovery, owed on a retried job and on a worker's first pass
   * over the dataset and after a failed one (its worker decides; true when not said). The pass looks anyway
   * when it takes requests another pass left `unlearning`. The rows a version owes after serving (its samples,
   * its batches' members) are on its row, which the pass reads anyway: they are written first whatever this says.
   */
  recover?: boolean;
}

/** A version published before its evidence, with the models it is measured on when the pass has them. */
interface EvidenceDue {
  model: ModelEntity;
  version: number;
  before?: TrainedModel;
  after?: TrainedModel;
  /** The requests the version forgets, when not the pass's own (a version an earlier pass logged but did not record). */
  requestIds?: string[];
}

/** A pass's approximate groups (by algorithm) and whether the exact pass follows them. */
interface ApproachPlan {
  approximate: { algorithm: ApproximateAlgorithm; requestIds: string[]; commitments: Set<string> }[];
  exact: boolean;
}

/** What one model's share of a pass needs beside the model. */
interface ModelPass {
  requestIds: string[];
  forgotten: Set<string>;
  approximate: ApproachPlan['approximate'];
  exactOwed: boolean;
  progress: PassProgress;
  clock: PassClock;
  evidenceDue: EvidenceDue[];
  /** The pass's job: the versions it trains send their retrained shards as shard tasks under it. */
  jobId?: string;
  /** Whether the pass makes crash-recovery look-ups (UnlearningPassOptions.recover): its sinks look for what a stopped pass logged only then. */
  recover: boolean;
}

/**
 * The UNLEARN_HELD the sink appended with a version, as the version's record (nothing when the guard let it through);
 * `held`: what the guard gave when the sink appended the version (computed there, once).
 */
function heldRecord(sink: ModelLedgerSink, modelId: string, version: number, held: UnlearnHeld | null): Pick<VersionRecord, 'held'> {
  const ledgerIndex = sink.indexOf('UNLEARN_HELD', modelId, version);
  if (ledgerIndex === undefined) return {};
  if (!held) throw new Error(`model ${modelId} version ${version}: the log holds an UNLEARN_HELD (entry ${ledgerIndex}) that its evidence does not give`);
  return { held: { figures: heldFigures(held), ledgerIndex } };
}

function heldFigures(held: UnlearnHeld): HeldFigures {
  const { testAccuracyBefore, testAccuracyAfter, drop, maxTestAccuracyDrop } = held;
  return { testAccuracyBefore, testAccuracyAfter, drop, maxTestAccuracyDrop };
}

/** Whether a version was published before its evidence and its EVIDENCE_RECORDED is not recorded yet. */
function isEvidencePending(version: ModelVersionEntity): boolean {
  return version.unlearnLedgerIndex !== null && version.evidenceLedgerIndex === null && version.evidence?.recordedIn === 'EVIDENCE_RECORDED';
}

/**
 * Carries forget requests through to unlearning (in a worker). One pass takes every request of a dataset
 * that waits (`received`, or `unlearning` left by a pass that stopped or failed for a reason a retry may
 * fix), moves them to `unlearning`, and for every ready model of the dataset that learned any of their
 * samples runs the model's method's forget once for all of them (MODEL_PUBLISHED + UNLEARN_COMPLETED, and
 * VERSION_RETIRED for every version that learned the samples, in one append) and records the new version: from
 * then on it is the one served. The forget publishes first (publishForget): nothing is evaluated before the new
 * version is served; its evidence (accuracies before and after, a reference, the membership attack, as the
 * model's `evaluation` asks) is measured next and logged as EVIDENCE_RECORDED (recordEvidence). Then the pass
 * deletes what the retired versions leave (RetirementService: files, checkpoints), shreds the samples and
 * completes the requests. Passes on one dataset never overlap (the dataset lock), and a pass that is run
 * again skips the models it already unlearned. A model whose method refuses to forget (too little data
 * left, ...) fails alone: it is marked `failed`, its versions that learned the samples are retired, and the
 * requests still complete (an erasure does not wait on a model that cannot unlearn). Any other error is
 * thrown, leaving the requests `unlearning` for the retry (or the next pass); on the last attempt, or for an
 * error a retry cannot fix outside the models, the requests fail.
 */
@Injectable()
export class UnlearningService {
  private readonly logger = new Logger('Unlearning');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly requests: ForgetRequestRepository,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly retirement: RetirementService,
    private readonly methods: KeptMethods,
    private readonly restorer: RestoreService,
    private readonly steps: ForgetSteps,
    private readonly datasetVersions: DatasetVersionService,
    private readonly features: FeatureUnlearningService,
    private readonly trainings: ModelTrainingService,
    private readonly opened: OpenedSamples,
  ) {}

  async unlearnDataset(datasetId: string, options: UnlearningPassOptions = {}): Promise<UnlearningPassResult> {
    const clock = options.clock ?? new PassClock();
    clock.lap('claim');
    return withDatasetLock(this.dataSource, datasetId, 'exclusive', async () => {
      clock.lap('lock');
      const { ids: requestIds, resumed } = await this.dataSource.transaction(async (manager) => {
        await options.onLocked?.(manager);
        return this.requests.takeWaiting(datasetId, options.jobId ?? null, manager);
      });
      const recover = options.recover !== false || resumed;
      clock.lap('take');
      const result = requestIds.length === 0 ? { requestIds, modelVersions: [], timings: clock.toJson() } : await this.forgetWaiting(datasetId, requestIds, clock, { ...options, recover });
      // Then the suspended requests asked to be restored (after the forgets taken with them, which they do not undo).
      const restores = await this.restorer.restoreWaiting(datasetId);
      // Then the models that asked to learn the samples uploaded since their latest version.
      const learned = await this.restorer.learnWaiting(datasetId);
      if (restores.restored.length + restores.refused.length + learned.length === 0) return result;
      return {
        ...result,
        ...(restores.restored.length > 0 ? { restoredRequestIds: restores.restored } : {}),
        ...(restores.refused.length > 0 ? { refusedRestores: restores.refused } : {}),
        modelVersions: [...result.modelVersions, ...restores.modelVersions, ...learned],
        timings: clock.toJson(),
      };
    });
  }

  /** The forget requests a pass took: unlearned from every model, then erased (mode forget) or suspended (mode suspend). */
  private async forgetWaiting(datasetId: string, requestIds: string[], clock: PassClock, options: UnlearningPassOptions): Promise<UnlearningPassResult> {
    try {
      const commitments = await this.requests.findCommitmentsOf(requestIds);
      clock.lap('commitments');
      // Feature-level requests (columns, no samples) are served after the samples' (FeatureUnlearningService).
      const featureRequests = await this.requests.findFeatures(requestIds);
      const sampleRequestIds = requestIds.filter((id) => !featureRequests.has(id));
      const { modelVersions, failedModels, evidenceDue } =
        sampleRequestIds.length > 0
          ? await this.forgetInEveryModel(datasetId, sampleRequestIds, commitments, clock, options)
          : { modelVersions: [], failedModels: [], evidenceDue: [] };
      if (featureRequests.size > 0) modelVersions.push(...(await this.features.forgetFeatures(datasetId, featureRequests)));
      // Every new version is served (and what it replaces retired) by now. Then the members of the batches each
      // retrained (receipts wait for them), the samples each learned, and the evidence, while the retired
      // versions' checkpoints and the forgotten samples (opened from the vault when a retried pass reloads the
      // version before), which it reads, are still there: the shred comes after it.
      for (const { modelId, version } of modelVersions) await this.store.recordBatchMembers(modelId, version, this.methods.get(modelId)?.model);
      clock.lap('batchMembers');
      for (const { modelId, version } of modelVersions) await this.store.recordVersionSamples(modelId, version);
      clock.lap('versionSamples');
      for (const due of evidenceDue) await this.recordEvidence(due, due.requestIds ?? requestIds, clock, options.lastAttempt ?? false);
      const retired = await this.retirement.retireForPass(requestIds, failedModels);
      clock.lap('retire');
      // Erasure, once nothing served needs the samples: their subjects' keys destroyed, their rows deleted. The
      // samples of suspended requests stay sealed (unless a forget of this pass names them too) until shredded.
      const modes = await this.requests.findModes(requestIds);
      const suspendIds = requestIds.filter((id) => modes.get(id) === 'suspend');
      const forgetIds = requestIds.filter((id) => modes.get(id) !== 'suspend');
      const kept = suspendIds.length === 0 ? new Set<string>() : new Set(await this.requests.findCommitmentsOf(suspendIds));
      const erased = forgetIds.length === 0 ? new Set<string>() : new Set(await this.requests.findCommitmentsOf(forgetIds));
      const shred = await this.vault.shred(datasetId, commitments.filter((c) => !kept.has(c) || erased.has(c)));
      clock.lap('shred');
      // The dataset without the erased samples: its next version (DATASET_VERSIONED), before the requests complete.
      if (shred.shredded.length > 0) await this.datasetVersions.recordVersion(datasetId);
      clock.lap('datasetVersion');
      if (forgetIds.length > 0) await this.requests.complete(forgetIds);
      for (const suspended of await this.requests.suspend(suspendIds)) await this.steps.logSuspended(suspended);
      clock.lap('complete');
      this.logger.log(
        `${requestIds.length} forget request(s): ${modelVersions.length} model version(s) published, ${retired.retiredVersions.length} retired, ` +
          `${failedModels.length} model(s) failed, ${shred.shredded.length} sample(s) erased, ${shred.keysDestroyed} data key(s) destroyed`,
      );
      return { requestIds, modelVersions, ...(failedModels.length > 0 ? { failedModels } : {}), timings: clock.toJson() };
    } catch (error) {
      const message = describeJobError(error);
      if (!isPermanentJobError(error) && !options.lastAttempt) {
        this.logger.warn(`${requestIds.length} forget request(s) of dataset ${datasetId} wait for a retry: ${message}`);
        throw error;
      }
      this.logger.error(`${requestIds.length} forget request(s) of dataset ${datasetId} failed: ${message}`);
      await this.retirement
        .releaseUnlogged(requestIds)
        .catch((e: unknown) => this.logger.warn(`releasing the versions marked for retirement: ${describeJobError(e)}`));
      await this.requests.fail(requestIds, message.slice(0, 2000));
      return { requestIds, modelVersions: [], error: message, timings: clock.toJson() };
    }
  }

  /**
   * Unlearns the requests' samples from every ready model of the dataset that learned them. A SISA or full model
   * whose requests include approximate ones first publishes an approximately forgotten version per algorithm
   * asked for (seconds), then, unless every request said `then: none`, the exact version from the version before
   * them, which supersedes them. A certified model removes them all by its own method. A pass run again resumes:
   * a version that reflects every request is done, unless it is approximate and an exact pass is owed.
   */
  private async forgetInEveryModel(
    datasetId: string,
    requestIds: string[],
    commitments: string[],
    clock: PassClock,
    { onProgress, jobId, recover = true }: Pick<UnlearningPassOptions, 'onProgress' | 'jobId' | 'recover'>,
  ): Promise<{ modelVersions: { modelId: string; version: number }[]; failedModels: FailedModel[]; evidenceDue: EvidenceDue[] }> {
    const forgotten = new Set(commitments);
    const plan = await this.planApproaches(requestIds);
    const evidenceDue: EvidenceDue[] = [];
    // A training that stopped after logging its version 1 (its worker died before the row) is finished first: the
    // log says that version learned the samples, so the requests are forgotten from it, as without the crash.
    // One query finds both; the look-up of what a stopped training logged is made only when one is `training`.
    const found = await this.dataSource
      .getRepository(ModelEntity)
      .find({ where: { datasetId, state: In(['ready', 'training']) }, order: { createdAt: 'ASC' } });
    const training = found.filter((m) => m.state === 'training');
    const finished = training.length > 0 ? await this.trainings.finishLoggedTrainings(training) : [];
    if (finished.length > 0) clock.lap('finishTrainings');
    const models = found.filter((m) => m.state === 'ready' || finished.includes(m.id));
    const progress = new PassProgress(models.length, onProgress);
    const published: { modelId: string; version: number }[] = [];
    const failed: FailedModel[] = [];
    for (const [position, model] of models.entries()) {
      progress.startModel(position);
      let latest = await this.store.findLatest(model.id);
      if (!latest) continue;
      // Its batches' members and its samples' rows, written after it was served, unless a crash came first (its
      // row says what is owed): written now, the members first (the samples' rows are read to load it).
      if (latest.batchesPending !== null && (await this.store.recordBatchMembers(model.id, latest.version, this.methods.get(model.id)?.model)))
        this.logger.warn(`model ${model.id} version ${latest.version}: its batch members were owed (a pass stopped after serving it); written now`);
      if (latest.samplesPending && (await this.store.recordVersionSamples(model.id, latest.version)))
        this.logger.warn(`model ${model.id} version ${latest.version}: its sample rows were owed (a pass stopped after serving it); written now`);
      const certified = (model.engineConfig as { method?: string }).method === 'certified';
      const share = { progress, clock, evidenceDue, jobId, recover };
      try {
        // A pass that stopped after logging the model's next version but before recording it (a crash, a
        // failed write) is finished first with the requests it logged, whatever waits now: the version it
        // logged is the one these requests make, byte for byte, so the log keeps it once and the store gets
        // it; the requests that arrived since are forgotten in the version after (found by the crash trials).
        const [unrecorded] = recover
          ? await this.ledger.findEntries({ type: 'UNLEARN_COMPLETED', fields: { modelId: model.id, modelVersion: latest.version + 1 }, limit: 1 })
          : [];
        if (unrecorded) {
          const logged = unrecorded.event.requestIds;
          this.logger.warn(`model ${model.id} version ${latest.version + 1} is logged but was not recorded: unlearning its ${logged.length} request(s) again first`);
          const due = evidenceDue.length;
          const loggedForgotten = new Set(await this.requests.findCommitmentsOf(logged));
          latest = (await this.forgetRequests(model, latest, logged, loggedForgotten, await this.planApproaches(logged), certified, share)) ?? latest;
          for (const d of evidenceDue.slice(due)) d.requestIds = logged;
          if (latest.unlearnLedgerIndex !== null) published.push({ modelId: model.id, version: latest.version });
        }
        const current = latest;
        const exactOwed = certified || plan.exact;
        if (requestIds.every((id) => current.reflectsForgetRequests.includes(id)) && (!exactOwed || current.guarantee?.kind !== 'approximate')) {
          // An earlier run of this pass got this far before it stopped (maybe before the version's evidence).
          if (current.unlearnLedgerIndex !== null && !published.some((p) => p.modelId === model.id && p.version === current.version))
            published.push({ modelId: model.id, version: current.version });
          if (isEvidencePending(current) && !evidenceDue.some((d) => d.model.id === model.id && d.version === current.version))
            evidenceDue.push({ model, version: current.version });
          continue;
        }
        const outcome = await this.forgetRequests(model, current, requestIds, forgotten, plan, certified, share);
        if (outcome === undefined) continue;
        latest = outcome;
      } catch (error) {
        if (!isPermanentJobError(error)) throw error;
        const message = `it could not unlearn forget request(s) ${requestIds.join(', ')}: ${describeJobError(error)}`;
        this.logger.error(`model ${model.id} fails: ${message}`);
        failed.push({ modelId: model.id, error: message });
        continue;
      }
      if (latest.unlearnLedgerIndex !== null && !published.some((p) => p.modelId === model.id && p.version === latest!.version))
        published.push({ modelId: model.id, version: latest.version });
    }
    progress.startModel(models.length);
    return { modelVersions: published, failedModels: failed, evidenceDue };
  }

  /**
   * Forgets `requestIds` (the `forgotten` commitments) in a model whose latest version is `latest`, by the
   * approaches `plan` groups them in (a certified model removes them all by its own method); returns the
   * model's new latest version row, or undefined when no version of it learned the samples.
   */
  private async forgetRequests(
    model: ModelEntity,
    latest: ModelVersionEntity,
    requestIds: string[],
    forgotten: Set<string>,
    plan: ApproachPlan,
    certified: boolean,
    share: Pick<ModelPass, 'progress' | 'clock' | 'evidenceDue' | 'jobId' | 'recover'>,
  ): Promise<ModelVersionEntity | undefined> {
    const kept = this.methods.get(model.id);
    // The version this process published last, unless another worker has published since (or it is not ours).
    const start =
      kept?.model && kept.model.version === latest.version && kept.model.onnxSha256 === latest.onnxSha256
        ? kept.model
        : await this.store.loadTrainedModel(latest);
    share.clock.lap('load');
    const reflectsAll = requestIds.every((id) => latest.reflectsForgetRequests.includes(id));
    if (!start.samples.some((s) => forgotten.has(s.commitment)) && !reflectsAll) return undefined;
    const approximate = certified ? [] : plan.approximate;
    return this.forgetInModel(model, start, latest, { requestIds, forgotten, approximate, exactOwed: certified || plan.exact, ...share });
  }

  /**
   * A model's share of the pass: its approximate forgets, one per algorithm group, each publishing an
   * approximately forgotten version from the one before; then, when owed, the exact forget from the version
   * before them (`start`, or, when a stopped run of this pass already published them, the last version before
   * them that is not approximate), published after them. Retirement: the exact version's append retires the
   * versions that learned the samples and the approximate versions it supersedes (VERSION_RETIRED); when no
   * exact forget follows, each approximate version's append retires the versions that learned its samples.
   * Returns the model's latest version row.
   */
  private async forgetInModel(model: ModelEntity, start: TrainedModel, latest: ModelVersionEntity, pass: ModelPass): Promise<ModelVersionEntity> {
    const { requestIds, forgotten, approximate, exactOwed } = pass;
    const resumed =
      latest.guarantee?.kind === 'approximate' && approximate.some((g) => g.requestIds.some((id) => latest.reflectsForgetRequests.includes(id)));
    const base = resumed ? await this.store.loadTrainedModel((await this.store.findLastNotApproximate(model.id, latest.version))!) : start;
    let current = start;
    for (const group of approximate) {
      if (group.requestIds.every((id) => latest.reflectsForgetRequests.includes(id))) continue;
      const learned = current.samples.filter((s) => group.commitments.has(s.commitment)).map((s) => s.externalId);
      if (learned.length === 0) continue;
      const outcome = await this.forgetOnce(
        model,
        current,
        latest.reflectsForgetRequests,
        pass,
        { requestIds: group.requestIds, externalIds: learned, approximate: { algorithm: group.algorithm } },
        exactOwed ? undefined : () => this.retirement.retireWithUnlearning(model.id, group.requestIds),
      );
      current = outcome.model;
      latest = outcome.row;
    }
    const owed = exactOwed ? base.samples.filter((s) => forgotten.has(s.commitment)).map((s) => s.externalId) : [];
    if (owed.length === 0) return latest;
    // The approximate versions after `base` (this run's and a stopped run's) still carry traces of the samples.
    const superseded = await this.store.findApproximateAfter(model.id, base.version, requestIds);
    const outcome = await this.forgetOnce(
      model,
      base,
      latest.reflectsForgetRequests,
      pass,
      // Published right after `base` (the common case): no version to name, so the exact forget may publish first.
      { requestIds, externalIds: owed, ...(current.version === base.version ? {} : { version: current.version + 1 }) },
      () => this.retirement.retireWithUnlearning(model.id, requestIds, superseded),
    );
    if (superseded.length > 0)
      this.logger.log(`model ${model.id}: exact version ${outcome.version} retires approximate version(s) ${superseded.map((v) => v.version).join(', ')}`);
    return outcome.row;
  }

  /**
   * One forget of one model with its method (kept between passes), its version recorded once its entries are
   * durable; `reflected` are the requests the version it starts from reflects. An exact forget published right
   * after the version it starts from is published first when the method can (publishForget: nothing evaluated
   * before it is served), its evidence due after (recordEvidence); an approximate forget, the exact one that
   * follows approximate versions (it names its version), and a method without publishForget measure their
   * evidence inline, in the UNLEARN_COMPLETED (SISA, full retraining and certified removal have it).
   */
  private async forgetOnce(
    model: ModelEntity,
    from: TrainedModel,
    reflected: string[],
    pass: ModelPass,
    request: Pick<ForgetRequest, 'requestIds' | 'externalIds' | 'approximate' | 'version'>,
    retire?: () => Promise<VersionRetired[]>,
  ): Promise<{ model: TrainedModel; version: number; row: ModelVersionEntity }> {
    const { clock, progress } = pass;
    // The versions `retire` names are retired by the very append that publishes this one, and the guard's
    // UNLEARN_HELD (first among them) goes with it when the step's evidence is measured inline.
    const guard = guardOf(model.config);
    let held: UnlearnHeld | null = null; // the guard's verdict on the version the sink appends
    const sink = new ModelLedgerSink(this.ledger, {
      mayBeLogged: pass.recover,
      onUnlearned: async (event) => {
        held = checkGuard(guard, event.evidence as { [key: string]: JsonValue }, event);
        return [...(held ? [held] : []), ...(retire ? await retire() : [])];
      },
    });
    const kept = await this.methods.keep(model.id, from.config);
    const { method } = kept;
    this.methods.lend(kept, { ledger: sink, onProgress: (p) => progress.report(p), jobId: pass.jobId });
    // This worker's shard tasks of the forget take their samples from the version's, in memory, not from the vault again.
    const release = this.opened.hold(from.samples);
    try {
      // A model that set its guard has its test accuracy measured before the version is served (inline evidence).
      const later =
        !request.approximate && request.version === undefined && method.publishForget !== undefined && method.recordEvidence !== undefined && !guard.explicit;
      const outcome = await (later
        ? buildFairnessRequest(this.dataSource, this.vault, model).then((fairness) =>
            method.publishForget!(from, { requestIds: request.requestIds, externalIds: request.externalIds, ...fairness }),
          )
        : // The model's test set (held-out samples), reference retrain and membership attack, as its `evaluation` asks.
          buildForgetRequest(this.dataSource, this.vault, model, request).then((built) => method.forget(from, { ...built, ...request }))
      ).catch(async (error: unknown) => {
        await this.methods.drop(model.id); // what it holds may be half-updated
        throw error;
      });
      clock.lap('forget');
      clock.addEngine(outcome.timings.phases);
      kept.model = outcome.model; // the method this job holds (an eviction meanwhile takes it out of the map)
      const version = outcome.model.version;
      await this.store.save(
        outcome.model,
        {
          ledgerIndex: sink.indexOf('MODEL_PUBLISHED', model.id, version)!,
          unlearnLedgerIndex: sink.indexOf('UNLEARN_COMPLETED', model.id, version)!,
          reflectsForgetRequests: [...new Set([...reflected, ...request.requestIds])],
          evidence: outcome.event.evidence as { [key: string]: JsonValue },
          batches: sink.batchesOf(model.id, version),
          // Published first, from the version before it: its sample rows are written after it is served.
          ...(later ? { madeFrom: { version: from.version } } : {}),
          ...(outcome.event.guarantee ? { guarantee: outcome.event.guarantee } : {}),
          ...heldRecord(sink, model.id, version, held),
        },
        (step) => clock.lap(step),
      );
      clock.servedNow(model.id);
      if (later) pass.evidenceDue.push({ model, version, before: from, after: outcome.model });
      return { model: outcome.model, version, row: (await this.store.findVersion(model.id, version))! };
    } finally {
      release();
      this.methods.end(kept);
    }
  }

  /**
   * The pass's approaches: the approximate requests grouped by algorithm (in log order of their first request),
   * each with the samples it names, and whether an exact pass is owed (a request asked for it, or did not say
   * `then: none`).
   */
  private async planApproaches(requestIds: string[]): Promise<ApproachPlan> {
    const approaches = await this.requests.findApproaches(requestIds);
    const groups = new Map<ApproximateAlgorithm, string[]>();
    for (const id of requestIds) {
      const approach = approaches.get(id);
      if (approach) groups.set(approach.algorithm, [...(groups.get(approach.algorithm) ?? []), id]);
    }
    const approximate: ApproachPlan['approximate'] = [];
    for (const [algorithm, ids] of groups) approximate.push({ algorithm, requestIds: ids, commitments: new Set(await this.requests.findCommitmentsOf(ids)) });
    return { approximate, exact: requestIds.some((id) => approaches.get(id)?.then !== 'none') };
  }

  /**
   * Measures the evidence of a version published before it (from the version before it) and logs it as
   * EVIDENCE_RECORDED, then records it on the version. An error a retry may fix is thrown (the retried pass
   * finds the evidence pending and measures it); on the last attempt, or for an error no retry fixes, the
   * evidence stays pending, logged: the erasure does not wait on it.
   */
  private async recordEvidence(due: EvidenceDue, requestIds: string[], clock: PassClock, lastAttempt: boolean): Promise<void> {
    const modelId = due.model.id;
    try {
      const after = due.after ?? (await this.loadVersion(modelId, due.version));
      const before = due.before ?? (await this.loadVersion(modelId, due.version - 1));
      const kept = await this.methods.keep(modelId, after.config);
      const { method, job: pass } = kept;
      // The guard of a version published before its evidence (a model that set none: the default), checked now.
      const guard = guardOf(due.model.config);
      const sink = new ModelLedgerSink(this.ledger, { onEvidence: (event) => [checkGuard(guard, event.evidence, { ...event, requestIds: event.forgetRequestIds })].filter((e) => e !== null) });
      pass.ledger = sink;
      try {
        const request = await buildEvidenceRequest(this.dataSource, this.vault, due.model, requestIds);
        const recorded = await method.recordEvidence!(before, after, request);
        clock.addEngine(recorded.timings, 'evidence.');
        const index = sink.indexOf('EVIDENCE_RECORDED', modelId, due.version)!;
        const heldIndex = sink.indexOf('UNLEARN_HELD', modelId, due.version);
        // Held before its evidence is recorded on the row: a row with evidence and no hold is one the guard passed.
        if (heldIndex !== undefined) {
          const held = checkGuard(guard, recorded.event.evidence, { modelId, modelVersion: due.version, requestIds })!;
          await this.store.recordHeld(modelId, due.version, heldFigures(held), heldIndex);
          this.logger.warn(`model ${modelId} version ${due.version}: held by its guard (test accuracy -${held.drop.toFixed(4)}, limit ${held.maxTestAccuracyDrop})`);
        }
        await this.store.recordEvidence(modelId, due.version, recorded.event.evidence, index);
        this.logger.log(`model ${modelId} version ${due.version}: evidence recorded (entry ${index})`);
      } finally {
        this.methods.end(kept);
      }
    } catch (error) {
      if (!isPermanentJobError(error) && !lastAttempt) throw error;
      this.logger.error(`model ${modelId} version ${due.version}: its evidence stays pending, it could not be measured: ${describeJobError(error)}`);
    }
    clock.lap('evidence');
  }

  /** The engine's view of one of the model's versions: the one this process keeps when it is that one, else from the store. */
  private async loadVersion(modelId: string, version: number): Promise<TrainedModel> {
    const kept = this.methods.get(modelId)?.model;
    if (kept?.version === version) return kept;
    const row = await this.store.findVersion(modelId, version);
    if (!row) throw new Error(`model ${modelId} has no version ${version}`);
    return this.store.loadTrainedModel(row);
  }

  /**
   * At a worker's start: writes the batch members that passes stopped before writing (each dataset only while
   * no pass or training holds it; otherwise its next pass writes them first, and a receipt that needs them
   * waits for them or writes them). Returns how many versions got theirs.
   */
  async finishInterrupted(): Promise<number> {
    const owed = await this.store.findOwedBatchMembers();
    let written = 0;
    for (const datasetId of new Set(owed.map((v) => v.datasetId))) {
      await tryWithDatasetLock(this.dataSource, datasetId, async () => {
        for (const v of owed.filter((o) => o.datasetId === datasetId)) if (await this.store.recordBatchMembers(v.modelId, v.version)) written++;
      });
    }
    if (written > 0) this.logger.warn(`at start: ${written} version(s) whose batch members a stopped pass owed got them`);
    return written;
  }

  /** Releases every kept method (the worker stops). */
  async close(): Promise<void> {
    await this.methods.close();
  }
}

/**
 * A pass's progress from the engine's reports: each model of the dataset is an equal share, and within a
 * model the retraining is most of it (modelDoneFraction). The ETA is the pass's own rate so far applied to
 * what is left.
 */
class PassProgress {
  private readonly started = Date.now();
  private base = 0;

  constructor(private readonly models: number, private readonly onProgress: PassProgressCallback | undefined) {}

  startModel(position: number): void {
    this.base = this.models === 0 ? 1 : position / this.models;
    this.emit(this.base);
  }

  report(progress: Progress): void {
    this.emit(this.base + Math.min(1, modelDoneFraction(progress)) / Math.max(1, this.models));
  }

  private emit(fraction: number): void {
    if (!this.onProgress) return;
    const elapsed = (Date.now() - this.started) / 1000;
    const etaSeconds = fraction > 0 && fraction < 1 ? (elapsed / fraction) * (1 - fraction) : fraction >= 1 ? 0 : null;
    this.onProgress({ fraction: Math.min(1, fraction), etaSeconds });
  }
}
