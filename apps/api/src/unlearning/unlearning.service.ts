import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { JsonValue, LedgerSink, LruMap, Progress, ProgressCallback, TrainedModel, UnlearningMethod } from '@lethe/unlearning';
import { DATA_DIR } from '../config/config.provider';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { withDatasetLock } from '../models/dataset.lock';
import { ModelEntity } from '../models/model.entity';
import { buildForgetRequest } from '../models/model-evaluation';
import { ModelLedgerSink } from '../models/model-ledger.sink';
import { checkpointStoreIn, createMethodFor } from '../models/model-training.service';
import { ModelStore } from '../models/model.store';
import { modelDoneFraction } from '../models/model.progress';
import { PassClock, PassTimings } from './pass-clock';
import { FailedModel, RetirementService } from './retirement.service';

export interface UnlearningPassResult {
  requestIds: string[];
  modelVersions: { modelId: string; version: number }[];
  /** Models that could not unlearn the requests (now `failed`, serving nothing); absent when none. */
  failedModels?: FailedModel[];
  /** Why the requests failed (they are `failed`); absent when they completed. */
  error?: string;
  /** Where the pass's time went. */
  timings: PassTimings;
}

/** Done fraction (0..1) of a whole pass and its estimated seconds left. */
export type PassProgressCallback = (progress: { fraction: number; etaSeconds: number | null }) => void;

export interface UnlearningPassOptions {
  /** The pass's row in `jobs`; the requests it takes point at it. */
  jobId?: string;
  onProgress?: PassProgressCallback;
  /** Called once the pass holds the dataset, before it takes the waiting requests (the worker claims its job here). */
  onLocked?: () => Promise<void>;
  /** No retry follows: an error fails the requests instead of leaving them for the next attempt. */
  lastAttempt?: boolean;
  /** The pass's clock, started when its worker received the job (a new one otherwise). */
  clock?: PassClock;
}

/** Models whose engine method (and latest version) this process keeps between passes. */
const KEPT_MODELS = 4;

/**
 * A model's engine method kept between passes, with the version it last published: the next pass on the
 * model reuses what the method holds (shard sessions, unchanged shards' weights, the members' outputs on the
 * evidence rows), so it evaluates only what it retrains. The method's ledger and progress callback are the
 * current pass's (read through `pass`, which the method holds by reference).
 */
interface KeptMethod {
  method: UnlearningMethod;
  pass: { ledger?: LedgerSink; onProgress?: ProgressCallback };
  model?: TrainedModel;
}

/**
 * Carries forget requests through to unlearning (in a worker). One pass takes every request of a dataset
 * that waits (`received`, or `unlearning` left by a pass that stopped or failed for a reason a retry may
 * fix), moves them to `unlearning`, and for every ready model of the dataset that learned any of their
 * samples runs the model's method's forget once for all of them (MODEL_PUBLISHED + UNLEARN_COMPLETED with
 * evidence, and VERSION_RETIRED for every version that learned the samples, in one append), records the new
 * version; then retires what learned the samples (RetirementService: files, checkpoints), shreds the samples
 * and completes the requests. Passes on one dataset never overlap (the dataset lock), and a pass that is run
 * again skips the models it already unlearned. A model whose method refuses to forget (too little data
 * left, ...) fails alone: it is marked `failed`, its versions that learned the samples are retired, and the
 * requests still complete (an erasure does not wait on a model that cannot unlearn). Any other error is
 * thrown, leaving the requests `unlearning` for the retry (or the next pass); on the last attempt, or for an
 * error a retry cannot fix outside the models, the requests fail.
 */
@Injectable()
export class UnlearningService {
  private readonly logger = new Logger('Unlearning');
  /** The least recently used beyond KEPT_MODELS is released. */
  private readonly kept = new LruMap<string, KeptMethod>(KEPT_MODELS, (modelId, kept) => this.release(modelId, kept));

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly requests: ForgetRequestRepository,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly retirement: RetirementService,
    @Inject(DATA_DIR) private readonly dataDir: string,
  ) {}

  async unlearnDataset(datasetId: string, options: UnlearningPassOptions = {}): Promise<UnlearningPassResult> {
    const clock = options.clock ?? new PassClock();
    clock.lap('claim');
    return withDatasetLock(this.dataSource, datasetId, 'exclusive', async () => {
      clock.lap('lock');
      await options.onLocked?.();
      const requestIds = await this.requests.takeWaiting(datasetId, options.jobId ?? null);
      clock.lap('take');
      if (requestIds.length === 0) return { requestIds, modelVersions: [], timings: clock.toJson() };
      try {
        const commitments = await this.requests.findCommitmentsOf(requestIds);
        clock.lap('commitments');
        const { modelVersions, failedModels } = await this.forgetInEveryModel(datasetId, requestIds, commitments, clock, options.onProgress);
        const retired = await this.retirement.retireForPass(requestIds, failedModels);
        clock.lap('retire');
        // Erasure, once nothing served needs the samples: their subjects' keys destroyed, their rows deleted.
        const shred = await this.vault.shred(datasetId, commitments);
        clock.lap('shred');
        await this.requests.complete(requestIds);
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
    });
  }

  private async forgetInEveryModel(
    datasetId: string,
    requestIds: string[],
    commitments: string[],
    clock: PassClock,
    onProgress?: PassProgressCallback,
  ): Promise<{ modelVersions: { modelId: string; version: number }[]; failedModels: FailedModel[] }> {
    const forgotten = new Set(commitments);
    const models = await this.dataSource
      .getRepository(ModelEntity)
      .find({ where: { datasetId, state: 'ready' }, order: { createdAt: 'ASC' } });
    const progress = new PassProgress(models.length, onProgress);
    const published: { modelId: string; version: number }[] = [];
    const failed: FailedModel[] = [];
    for (const [position, model] of models.entries()) {
      progress.startModel(position);
      const latest = await this.store.findLatest(model.id);
      if (!latest) continue;
      if (requestIds.every((id) => latest.reflectsForgetRequests.includes(id))) {
        // An earlier run of this pass got this far before it stopped.
        if (latest.unlearnLedgerIndex !== null) published.push({ modelId: model.id, version: latest.version });
        continue;
      }
      const kept = this.kept.get(model.id);
      // The version this process published last, unless another worker has published since (or it is not ours).
      const trained =
        kept?.model && kept.model.version === latest.version && kept.model.onnxSha256 === latest.onnxSha256
          ? kept.model
          : await this.store.loadTrainedModel(latest);
      const learned = trained.samples.filter((s) => forgotten.has(s.commitment)).map((s) => s.externalId);
      clock.lap('load');
      if (learned.length === 0) continue;
      // The versions that learned the samples are retired by the very append that publishes the one that forgets them.
      const sink = new ModelLedgerSink(this.ledger, {
        onUnlearned: () => this.retirement.retireWithUnlearning(model.id, requestIds),
      });
      const { method, pass } = await this.keep(model.id, trained);
      pass.ledger = sink;
      pass.onProgress = (p) => progress.report(p);
      try {
        // The model's test set (held-out samples) and reference retrain, as its `evaluation` asks.
        const forgetRequest = await buildForgetRequest(this.dataSource, this.vault, model, { requestIds, externalIds: learned });
        clock.lap('request');
        const outcome = await method.forget(trained, forgetRequest).catch(async (error: unknown) => {
          await this.releaseMethod(model.id); // what it holds may be half-updated
          throw error;
        });
        clock.lap('forget');
        clock.addEngine(outcome.timings.phases);
        this.kept.get(model.id)!.model = outcome.model;
        const version = outcome.model.version;
        await this.store.save(outcome.model, {
          ledgerIndex: sink.indexOf('MODEL_PUBLISHED', model.id, version)!,
          unlearnLedgerIndex: sink.indexOf('UNLEARN_COMPLETED', model.id, version)!,
          reflectsForgetRequests: [...new Set([...latest.reflectsForgetRequests, ...requestIds])],
          evidence: outcome.event.evidence as { [key: string]: JsonValue },
          batches: sink.batchesOf(model.id, version),
        });
        clock.lap('save');
        clock.servedNow(model.id);
        published.push({ modelId: model.id, version });
      } catch (error) {
        if (!isPermanentJobError(error)) throw error;
        const message = `it could not unlearn forget request(s) ${requestIds.join(', ')}: ${describeJobError(error)}`;
        this.logger.error(`model ${model.id} fails: ${message}`);
        failed.push({ modelId: model.id, error: message });
      } finally {
        pass.ledger = undefined;
        pass.onProgress = undefined;
      }
    }
    progress.startModel(models.length);
    return { modelVersions: published, failedModels: failed };
  }

  /** Releases every kept method (the worker stops). */
  async close(): Promise<void> {
    this.kept.clear();
    await this.kept.settled();
  }

  /** The model's kept method (made now if there is none), marked most recently used; the least recently used beyond KEPT_MODELS are released. */
  private async keep(modelId: string, trained: TrainedModel): Promise<KeptMethod> {
    let kept = this.kept.get(modelId);
    if (!kept) {
      const pass: KeptMethod['pass'] = {};
      const store = checkpointStoreIn(this.dataDir);
      const method = createMethodFor(trained.config, {
        store,
        log: (message) => this.logger.warn(message), // e.g. a shard retrained from scratch: its checkpoints come from another runtime envelope
        get ledger() {
          return pass.ledger;
        },
        get onProgress() {
          return pass.onProgress;
        },
      });
      kept = { method, pass };
      this.kept.set(modelId, kept);
      await this.kept.settled();
    }
    return kept;
  }

  /** Drops the model's kept method and releases what it holds (sessions, weights, outputs). */
  private async releaseMethod(modelId: string): Promise<void> {
    this.kept.evict(modelId);
    await this.kept.settled();
  }

  private async release(modelId: string, kept: KeptMethod): Promise<void> {
    await kept.method
      .release()
      .catch((e: unknown) => this.logger.warn(`releasing the engine of model ${modelId}: ${(e as Error).message}`));
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
