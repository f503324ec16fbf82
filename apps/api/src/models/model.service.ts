import { JobRepository } from '../jobs/job.repository';
import { JobTaskRepository } from '../jobs/job-task.repository';
import { BadRequestException, ConflictException, GoneException, Injectable, NotFoundException, OnModuleDestroy } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import {
  LruMap,
  MEMBERSHIP_LIMITS,
  Predictions,
  UnlearningError,
  VerifiedModel,
  checkCertifiedTraining,
  loadVerifiedModel,
  normalizeConfig,
  resolveCertified,
  resolvePrivacy,
} from '@lethe/unlearning';
import { Principal } from '../auth/role';
import { parseIntegerParam } from '../common/query-params';
import { parseUuidQueryParam } from '../common/uuid';
import { DatasetService } from '../datasets/dataset.service';
import { TRAIN_JOB } from '../jobs/job.entity';
import { JobService } from '../jobs/job.service';
import {
  CreateModelDto,
  CreatedModelResponseDto,
  ModelResponseDto,
  ModelSummaryDto,
  ModelVersionResponseDto,
  PredictDto,
  PredictionResponseDto,
  evaluationSettingsOf,
  toEngineConfig,
  toModelResponse,
  toModelSummary,
  toModelVersionResponse,
} from './model.dto';
import { ModelEntity, ModelVersionEntity, isHeld } from './model.entity';
import { countTrainableSamples } from './model-evaluation';
import { putNoiseSeeds } from './noise-seeds';
import { ModelStore } from './model.store';

/** Verified ONNX sessions kept for predictions (the least recently used is released first). */
const MAX_LOADED_MODELS = 8;

/** Models: creation (a training job), description, files and predictions. Training runs in the workers. */
@Injectable()
export class ModelService implements OnModuleDestroy {
  private readonly loaded = new LruMap<string, Promise<VerifiedModel>>(MAX_LOADED_MODELS, (_, model) =>
    model.then((m) => m.release()).catch(() => undefined),
  );

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly datasetService: DatasetService,
    private readonly jobService: JobService,
    private readonly store: ModelStore,
    private readonly jobs: JobRepository,
    private readonly tasks: JobTaskRepository,
  ) {}

  async create(body: CreateModelDto, principal: Principal | undefined): Promise<CreatedModelResponseDto> {
    if (body.architecture.type === 'logreg' && body.architecture.hidden !== undefined)
      throw new BadRequestException('architecture.hidden: a logreg model has no hidden layers');
    if (body.architecture.type === 'mlp' && body.architecture.hidden === undefined)
      throw new BadRequestException('architecture.hidden is required for an mlp (hidden layer widths, e.g. [16])');
    if (body.epochsPerSlice !== undefined && body.method !== 'sisa')
      throw new BadRequestException(`epochsPerSlice: only a sisa model trains by slices (method is ${body.method})`);
    checkCertifiedBody(body);
    const dataset = await this.datasetService.findRegistered(body.datasetId);
    const engineConfig = toEngineConfig(body, dataset);
    // A certified config is complete (and checked) once its settings are resolved, which takes n, counted below.
    const config = body.method === 'certified' ? undefined : normalizeConfig(engineConfig);
    const shape = config ?? { seed: String(body.seed), shards: 1, slices: 1 };
    // Stored resolved: a stored config without a schedule is one from before it existed (full epochs per slice).
    if (config) engineConfig.epochsPerSlice = config.epochsPerSlice;
    const evaluation = evaluationSettingsOf(body);
    if (body.guard !== undefined && evaluation.holdoutFraction === 0)
      throw new BadRequestException('guard: the guard compares test accuracy on the holdout; set evaluation.holdoutFraction above 0');
    const holdout = { seed: shape.seed, fraction: evaluation.holdoutFraction };
    const { heldOut, trainingSamples } = await this.checkEnoughData(dataset.id, shape.shards, shape.slices, holdout);
    if (evaluation.membership) checkMembershipNonMembers(evaluation.membership.canaries, heldOut);
    if (body.privacy && config) {
      // n, the samples it will train on, bounds δ (< 1/n) and sets the sampling rate; σ is solved here (the RDP
      // accountant takes well under a second) so that a target out of reach is a 400 and nothing is queued.
      engineConfig.privacy = resolvePrivacy(body.privacy, {
        trainingSamples,
        shards: config.shards,
        batchSize: config.batchSize,
        epochsPerSlice: config.epochsPerSlice as number[],
      });
    }
    if (body.certified) {
      // n, the samples it will train on, bounds δ (< 1/n) and the training's own share of the budget; the noise
      // seed is drawn here, so that an impossible certificate is a 400 and nothing is queued.
      engineConfig.certified = resolveCertified(body.certified, trainingSamples);
      checkCertifiedTraining(engineConfig.certified, trainingSamples);
      normalizeConfig(engineConfig);
    }

    const modelId = randomUUID();
    const jobId = randomUUID();
    const createdBy = principal?.keyId ?? null;
    // The noise seeds drawn above are stored sealed under a key of the model's own, never in clear.
    const sealed = await this.store.noiseSeeds.seal(modelId, engineConfig);
    await this.dataSource.transaction(async (manager) => {
      await this.jobService.insert(manager, jobId, TRAIN_JOB, { modelId }, createdBy);
      await manager.query(
        `INSERT INTO models (id, dataset_id, config, engine_config, noise_key_id, noise_seeds, state, job_id, created_by) VALUES ($1, $2, $3, $4, $5, $6, 'training', $7, $8)`,
        [modelId, dataset.id, JSON.stringify(body), JSON.stringify(sealed.engineConfig), sealed.noiseKeyId, sealed.noiseSeeds, jobId, createdBy],
      );
    });
    await this.jobService.send(jobId);
    return { modelId, jobId };
  }

  /**
   * Online learning: the dataset's next unlearning pass (a job, waiting for the dataset) learns the samples uploaded
   * since the model's latest version and publishes the next version (BATCH_LEARNED for each slice it trains). 409
   * naming the state unless the model is ready; a certified model cannot learn samples into a version (409 naming
   * its method).
   */
  async learn(id: string, principal: Principal | undefined): Promise<{ modelId: string; jobId: string }> {
    const model = await this.findModel(id);
    if (model.state !== 'ready') throw new ConflictException(`state: model ${id} is ${model.state}, not ready; nothing was queued`);
    const method = (model.engineConfig as { method?: string }).method;
    if (method === 'certified') throw new ConflictException(`method: model ${id} is certified, which cannot learn samples into a version; nothing was queued`);
    await this.dataSource.query(`UPDATE models SET learn_requested_at = COALESCE(learn_requested_at, now()) WHERE id = $1`, [id]);
    const { jobId } = await this.jobs.findOrCreateWaitingPass(model.datasetId, principal?.keyId ?? null);
    await this.jobService.send(jobId);
    return { modelId: id, jobId };
  }

  async list(query: { datasetId?: unknown; start?: unknown; limit?: unknown }): Promise<ModelSummaryDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: 1000 });
    const datasetId = parseUuidQueryParam(query.datasetId, 'datasetId');
    const models = await this.dataSource.getRepository(ModelEntity).find({
      where: datasetId !== undefined ? { datasetId } : {},
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: start,
      take: limit,
    });
    const latest: { model_id: string; version: number }[] = await this.dataSource.query(
      `SELECT model_id, max(version) AS version FROM model_versions WHERE model_id = ANY($1::uuid[]) GROUP BY model_id`,
      [models.map((m) => m.id)],
    );
    const latestOf = new Map(latest.map((l) => [l.model_id, Number(l.version)]));
    const opened = await Promise.all(models.map((m) => this.withNoiseSeeds(m)));
    return opened.map((m) => toModelSummary(m, latestOf.get(m.id) ?? null));
  }

  async get(id: string): Promise<ModelResponseDto> {
    const model = await this.findModel(id);
    const versions = await this.dataSource.getRepository(ModelVersionEntity).find({ where: { modelId: id }, order: { version: 'ASC' } });
    return toModelResponse(await this.withNoiseSeeds(model), versions, await this.tasks.findTrainedShards(id));
  }

  /** The model with its noise seeds opened into its engine config (the routes are for ml and auditor keys: a replay needs them). */
  private async withNoiseSeeds(model: ModelEntity): Promise<ModelEntity> {
    return Object.assign(new ModelEntity(), model, { engineConfig: putNoiseSeeds(model.engineConfig, await this.store.noiseSeeds.open(model)) });
  }

  async getVersion(id: string, version: number): Promise<ModelVersionResponseDto> {
    return toModelVersionResponse(await this.findVersion(id, version), await this.tasks.findTrainedShards(id));
  }

  /** The ONNX file of a version, checked against its published SHA-256; a retired one is gone (410). */
  async getOnnx(id: string, version: number): Promise<{ bytes: Buffer; onnxSha256: string }> {
    const model = await this.findModel(id);
    const row = await this.findVersion(id, version);
    this.checkServable(model, row);
    const expected = await this.publishedSha256(row);
    const bytes = await this.unlessRetiredMeanwhile(model, row, () => this.store.readOnnx(id, version));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expected)
      throw new UnlearningError('HASH_MISMATCH', `model ${id} version ${version}: file SHA-256 ${actual}, published ${expected}`, { expectedSha256: expected, actualSha256: actual });
    return { bytes, onnxSha256: expected };
  }

  async predict(id: string, body: PredictDto): Promise<PredictionResponseDto> {
    const model = await this.findModel(id);
    const row = body.version !== undefined ? await this.findVersion(id, body.version) : await this.store.findCurrent(model);
    if (!row) throw new NotFoundException(`model ${id} has no published version yet (state ${model.state})`);
    if (body.version === undefined && row.retiredAt === null && isHeld(row))
      throw new ConflictException(
        `held: model ${id} version ${row.version} is held by its catastrophic-forgetting guard (test accuracy fell by ${row.held?.drop}, more than ` +
          `${row.held?.maxTestAccuracyDrop}): ask for it by version, or release it with POST /v1/models/${id}/versions/${row.version}/release`,
      );
    if (body.version === undefined && row.retiredAt !== null) {
      throw new ConflictException(
        `model ${id} serves nothing: its latest version ${row.version} was retired by forget request(s) ${row.retiredBy.join(', ')} and ` +
          (model.state === 'failed' ? `no version replaces it (model failed: ${model.error})` : 'the version that forgets them is not published yet'),
      );
    }
    this.checkServable(model, row);
    const numFeatures = Number((model.engineConfig as { numFeatures: number }).numFeatures);
    body.inputs.forEach((input, i) => {
      if (input.length !== numFeatures) throw new BadRequestException(`inputs[${i}] has ${input.length} features, want ${numFeatures}`);
      input.forEach((v, j) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequestException(`inputs[${i}][${j}] must be a finite number`);
        if (Math.abs(v) > 3.4e38) throw new BadRequestException(`inputs[${i}][${j}] does not fit a 32-bit float`);
      });
    });
    const { served, done } = await this.unlessRetiredMeanwhile(model, row, () => this.retain(row));
    let out: Predictions;
    try {
      out = await served.predict(body.inputs);
    } finally {
      done();
    }
    const probabilities = body.inputs.map((_, i) => Array.from(out.probabilities.subarray(i * out.classes, (i + 1) * out.classes)));
    return { modelVersion: row.version, onnxSha256: served.sha256, predictions: out.labels, probabilities };
  }

  async onModuleDestroy(): Promise<void> {
    this.loaded.clear();
    await this.loaded.settled();
  }

  /**
   * A retired version is gone (410, naming the forget requests whose samples it learned), and its session
   * leaves this process's cache at once; the row is read for every request, so a version another process
   * retired is refused here too. A model that failed to unlearn serves nothing (409, its error naming them).
   */
  private checkServable(model: ModelEntity, row: ModelVersionEntity): void {
    if (row.retiredAt !== null) {
      this.loaded.evict(sessionKey(row));
      throw new GoneException(
        `model ${row.modelId} version ${row.version} was retired at ${row.retiredAt.toISOString()} by forget request(s) ${row.retiredBy.join(', ')}: ` +
          'it learned their samples, and its file is deleted',
      );
    }
    if (model.state === 'failed') throw new ConflictException(`model ${model.id} serves nothing: ${model.error ?? 'it failed'}`);
  }

  /** Runs `read` (which reads the version's file); if the file vanished because the version was retired meanwhile, 410. */
  private async unlessRetiredMeanwhile<T>(model: ModelEntity, row: ModelVersionEntity, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const now = await this.store.findVersion(row.modelId, row.version);
      if (now) this.checkServable(model, now);
      throw error;
    }
  }

  /**
   * The version's verified session, held until `done` is called: a release of it asked for meanwhile (the cache
   * evicting it: least recently used, retired, the module ending) waits until then. The hold is taken by a
   * reaction registered on the cached promise in the same turn as the look-up; an eviction releases through a
   * reaction on that promise registered later, and reactions run in the order they were registered, so the hold
   * always comes first — and an eviction before the look-up took the entry out of the cache, so this loads anew.
   */
  private retain(row: ModelVersionEntity): Promise<{ served: VerifiedModel; done: () => void }> {
    return this.load(row).then((served) => ({ served, done: served.retain() }));
  }

  /** A verified session for a version: its file's hash must be the one in its MODEL_PUBLISHED entry. */
  private load(row: ModelVersionEntity): Promise<VerifiedModel> {
    const key = sessionKey(row);
    let loading = this.loaded.get(key);
    if (loading) return loading;
    loading = (async () => {
      const model = await loadVerifiedModelBytes(await this.store.readOnnx(row.modelId, row.version), await this.publishedSha256(row));
      await this.releaseRetired(row.modelId, row.version);
      return model;
    })();
    this.loaded.set(key, loading);
    loading.catch(() => this.loaded.delete(key));
    return loading;
  }

  /**
   * Releases the sessions of the model's versions retired since they were loaded (by a worker, maybe in another
   * process), when a new version of the model is loaded: a retired version learned forgotten samples, and its
   * session should not wait in memory for the least recently used to go or for a request to it (checkServable).
   * Best effort: a failed look leaves them to those.
   */
  private async releaseRetired(modelId: string, loading: number): Promise<void> {
    const prefix = `${modelId}:`;
    const versions = this.loaded
      .keys()
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length)))
      .filter((v) => v !== loading);
    if (versions.length === 0) return;
    const retired: { version: number }[] = await this.dataSource
      .query(`SELECT version FROM model_versions WHERE model_id = $1 AND version = ANY($2::int[]) AND retired_at IS NOT NULL`, [modelId, versions])
      .catch(() => []);
    for (const { version } of retired) this.loaded.evict(`${prefix}${version}`);
  }

  private async publishedSha256(row: ModelVersionEntity): Promise<string> {
    const event = await this.ledger.getEvent(Number(row.ledgerIndex));
    if (event.type !== 'MODEL_PUBLISHED' || event.modelId !== row.modelId || event.modelVersion !== row.version)
      throw new Error(`entry ${row.ledgerIndex} is not the MODEL_PUBLISHED of model ${row.modelId} version ${row.version}`);
    return event.onnxSha256;
  }

  private async findModel(id: string): Promise<ModelEntity> {
    const model = await this.dataSource.getRepository(ModelEntity).findOneBy({ id });
    if (!model) throw new NotFoundException(`no model with id ${id}`);
    return model;
  }

  private async findVersion(id: string, version: number): Promise<ModelVersionEntity> {
    await this.findModel(id);
    const row = await this.store.findVersion(id, version);
    if (!row) throw new NotFoundException(`model ${id} has no version ${version}`);
    return row;
  }

  /**
   * What the engine would refuse at training time, refused now: too few samples for S x R, one class (samples
   * asked to be forgotten and samples the holdout keeps for testing do not count). Returns how many it will train on.
   */
  private async checkEnoughData(
    datasetId: string,
    shards: number,
    slices: number,
    holdout: { seed: string; fraction: number },
  ): Promise<{ heldOut: number; trainingSamples: number }> {
    const row = await countTrainableSamples(this.dataSource, this.vault, datasetId, holdout);
    if (row.count === 0) throw new UnlearningError('INSUFFICIENT_DATA', `dataset ${datasetId} has no samples`);
    if (row.labels < 2) throw new UnlearningError('INSUFFICIENT_DATA', `dataset ${datasetId} has only one class`);
    if (row.count < shards * slices) {
      const counted = holdout.fraction > 0 ? `${row.count} samples not held out` : `${row.count} samples`;
      throw new UnlearningError(
        'INSUFFICIENT_DATA',
        `shards, slices: ${counted} cannot fill ${shards} shards x ${slices} slices (need at least ${shards * slices})`,
      );
    }
    return { heldOut: row.heldOut, trainingSamples: row.count };
  }
}

/**
 * The membership attack reads a TPR at 1% FPR against at least MEMBERSHIP_LIMITS.minNonMembers non-members: the
 * canaries kept out when it has canaries (always enough), else the held-out samples, which must be enough now.
 */
function checkMembershipNonMembers(canaries: number, heldOut: number): void {
  const { minNonMembers } = MEMBERSHIP_LIMITS;
  if (canaries > 0 || heldOut >= minNonMembers) return;
  throw new BadRequestException(
    `evaluation.membership: the attack needs at least ${minNonMembers} non-members for a TPR at 1% FPR; without canaries these are the held-out ` +
      `samples, and this model would hold out ${heldOut}. Raise evaluation.holdoutFraction or ask for evaluation.membership.canaries`,
  );
}

function sessionKey(row: ModelVersionEntity): string {
  return `${row.modelId}:${row.version}`; // releaseRetired reads it back
}

/**
 * What a certified model's body may hold, checked before anything is read: a logreg (the removal bound needs a
 * convex loss with a Lipschitz Hessian), its `certified` settings, and none of the SGD settings it does not use;
 * and `certified` on no other method.
 */
function checkCertifiedBody(body: CreateModelDto): void {
  if (body.method !== 'certified') {
    if (body.certified !== undefined) throw new BadRequestException(`certified: only method certified takes certified settings (method is ${body.method})`);
    return;
  }
  if (body.architecture.type !== 'logreg')
    throw new BadRequestException(`architecture.type: certified removal needs a logreg (a convex loss with a Lipschitz Hessian), got ${body.architecture.type}`);
  for (const field of ['shards', 'slices', 'epochs', 'batchSize', 'learningRate'] as const) {
    if (body[field] !== undefined)
      throw new BadRequestException(`${field}: a certified model is trained by L-BFGS to a gradient norm of 1e-6 per sample, without ${field}`);
  }
  if (body.certified === undefined) throw new BadRequestException('certified: method certified needs certified settings {epsilon, delta, lambda}');
  if (body.privacy !== undefined) throw new BadRequestException('privacy: DP-SGD does not apply to certified removal (trained by L-BFGS, not SGD)');
}

async function loadVerifiedModelBytes(bytes: Buffer, expectedSha256: string): Promise<VerifiedModel> {
  return loadVerifiedModel(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), expectedSha256);
}
