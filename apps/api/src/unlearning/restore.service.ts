import { Injectable, Logger } from '@nestjs/common';
import { DataSource, IsNull, Not } from 'typeorm';
import type { LearnHeld } from '@lethe/events';
import { Ledger, SampleVault } from '@lethe/ledger';
import { compactFeatures, EngineEvent, evaluateModel, Sample, TrainedModel, UnlearningError } from '@lethe/unlearning';
import { ForgetRequestEntity } from '../forget-requests/forget-request.entity';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { KeptMethods } from '../models/kept-methods';
import { loadHeldOutSamples, loadTrainingSets } from '../models/model-evaluation';
import { checkLearnGuard } from '../models/model-guard';
import { guardOf } from '../models/model-lifecycle.dto';
import { ModelLedgerSink } from '../models/model-ledger.sink';
import { HeldFigures, ModelEntity, ModelVersionEntity } from '../models/model.entity';
import { ModelStore, withBatch } from '../models/model.store';
import { RetirementStore } from '../models/retirement.store';

export interface RestoreOutcome {
  restored: string[];
  modelVersions: { modelId: string; version: number }[];
  /** Requests whose restore cannot be done (back to `suspended`), with why. */
  refused: { requestId: string; error: string }[];
}

/**
 * Undoes suspended forget requests (state `restoring`; an unlearning pass calls it under the dataset lock): each model
 * whose latest version reflects the request learns its samples again (the engine's relearn: what forgetting them
 * retrained, trained again with them, from the same checkpoints) and publishes the next version, which reflects the
 * request no more. Then FORGET_RESTORED names the versions, and the request is `restored`: its samples are usable
 * again. Training is deterministic, so when nothing else changed since the suspension each new version's ONNX file is
 * byte for byte the one before it. A restore no retry can do (a certified model, a sample erased meanwhile) sends the
 * request back to `suspended`, logging nothing; any other error is thrown for the pass's retry.
 */
@Injectable()
export class RestoreService {
  private readonly logger = new Logger('Restore');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly requests: ForgetRequestRepository,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly methods: KeptMethods,
    private readonly retirements: RetirementStore,
  ) {}

  async restoreWaiting(datasetId: string): Promise<RestoreOutcome> {
    const outcome: RestoreOutcome = { restored: [], modelVersions: [], refused: [] };
    for (const request of await this.requests.findRestoring(datasetId)) {
      try {
        // A stop between the append and the state change left the request restoring with its entry logged: the
        // entry is recorded, not appended again (its versions are published; nothing is left to learn).
        const [logged] = await this.ledger.findEntries({ type: 'FORGET_RESTORED', fields: { requestId: request.id }, limit: 1 });
        if (logged) {
          await this.requests.finishRestore(request.id, logged.index);
          outcome.restored.push(request.id);
          outcome.modelVersions.push(...logged.event.modelVersions.map((v) => ({ modelId: v.modelId, version: v.modelVersion })));
          this.logger.log(`forget request ${request.id} was restored before a stop: its entry ${logged.index} recorded`);
          continue;
        }
        const versions = await this.restoreInEveryModel(request);
        const entry = await this.ledger.appendOne({
          type: 'FORGET_RESTORED',
          version: 1,
          requestId: request.id,
          datasetId,
          modelVersions: versions.map((v) => ({ modelId: v.modelId, modelVersion: v.version, onnxSha256: v.onnxSha256 })),
        });
        await this.requests.finishRestore(request.id, entry.index);
        outcome.restored.push(request.id);
        outcome.modelVersions.push(...versions.map(({ modelId, version }) => ({ modelId, version })));
        this.logger.log(`forget request ${request.id} restored: ${versions.length} model version(s) published (entry ${entry.index})`);
      } catch (error) {
        if (!isPermanentJobError(error)) throw error;
        const message = describeJobError(error);
        await this.requests.finishRestore(request.id, null);
        outcome.refused.push({ requestId: request.id, error: message });
        this.logger.error(`forget request ${request.id} cannot be restored, it stays suspended: ${message}`);
      }
    }
    return outcome;
  }

  private async restoreInEveryModel(request: ForgetRequestEntity): Promise<{ modelId: string; version: number; onnxSha256: string }[]> {
    const models = await this.dataSource
      .getRepository(ModelEntity)
      .find({ where: { datasetId: request.datasetId, state: 'ready' }, order: { createdAt: 'ASC' } });
    const published: { modelId: string; version: number; onnxSha256: string }[] = [];
    for (const model of models) {
      const latest = await this.store.findLatest(model.id);
      // A model trained after the suspension never learned the samples; one restored already (a retried pass) is done.
      if (!latest || !latest.reflectsForgetRequests.includes(request.id)) continue;
      const relearned = await this.restoreInModel(model, latest, request.id);
      published.push({ modelId: model.id, version: relearned.version, onnxSha256: relearned.onnxSha256 });
    }
    return published;
  }

  private async restoreInModel(model: ModelEntity, latest: ModelVersionEntity, requestId: string): Promise<TrainedModel> {
    const { sampleIds, restored } = await this.findSamplesToRelearn(model.id, latest.version, requestId);
    const opened = await this.vault.readSamples({ sampleIds }, { float32: true });
    if (opened.length !== sampleIds.length)
      throw new UnlearningError('INVALID_REQUEST', `model ${model.id}: ${sampleIds.length - opened.length} of the samples to learn again were erased`);
    // Each restored sample goes back to the learn batch it was in (the engine keeps the others' batches).
    const samples: Sample[] = compactFeatures(opened.map((s) => withBatch(s, restored.get(String(s.id)))));
    const externalIds = opened.filter((s) => restored.has(String(s.id))).map((s) => s.externalId);
    return this.relearnInModel(model, latest, samples, externalIds, latest.reflectsForgetRequests.filter((id) => id !== requestId), {
      cause: 'restore',
      requestIds: [requestId],
    });
  }

  /**
   * Online learning (POST /v1/models/:id/learn): each model of the dataset that asked learns the samples it would
   * train on now (usable, not held out) that its latest version has not learned, and publishes the next version:
   * the bytes a training from scratch on the same samples gives. Nothing new: no version. The ask is cleared.
   */
  async learnWaiting(datasetId: string): Promise<{ modelId: string; version: number }[]> {
    const models = await this.dataSource
      .getRepository(ModelEntity)
      .find({ where: { datasetId, state: 'ready', learnRequestedAt: Not(IsNull()) }, order: { createdAt: 'ASC' } });
    const published: { modelId: string; version: number }[] = [];
    for (const model of models) {
      const latest = await this.store.findLatest(model.id);
      if (latest) {
        const { train } = await loadTrainingSets(this.dataSource, this.vault, model);
        const learned: { commitment: string }[] = await this.dataSource.query(
          `SELECT s.commitment FROM model_version_samples m JOIN sample_commitments s ON s.id = m.sample_id WHERE m.model_id = $1 AND m.version = $2`,
          [model.id, latest.version],
        );
        const known = new Set(learned.map((r) => r.commitment));
        const added = train.filter((s) => !known.has(s.commitment)).map((s) => s.externalId);
        if (added.length > 0) {
          const version = await this.relearnInModel(model, latest, train, added, latest.reflectsForgetRequests, { cause: 'learn' });
          published.push({ modelId: model.id, version: version.version });
          this.logger.log(`model ${model.id} learned ${added.length} new sample(s): version ${version.version}`);
        }
      }
      await this.dataSource.query(`UPDATE models SET learn_requested_at = NULL WHERE id = $1 AND learn_requested_at <= $2`, [model.id, model.learnRequestedAt]);
    }
    return published;
  }

  /**
   * Publishes the model's next version from `latest` with `samples`, of which `externalIds` are learned anew: a learn
   * appends them as a new learn batch, a restore puts them back where they were. The catastrophic-forgetting guard
   * checks it before it is served: its test accuracy (MODEL_PUBLISHED.metrics) against that of `latest` on the same
   * holdout; a drop above the model's limit publishes it held, LEARN_HELD in the same append.
   */
  private async relearnInModel(
    model: ModelEntity,
    latest: ModelVersionEntity,
    samples: Sample[],
    externalIds: string[],
    reflectsForgetRequests: string[],
    why: { cause: 'learn' } | { cause: 'restore'; requestIds: string[] },
  ): Promise<TrainedModel> {
    const kept = await this.methods.keep(model.id, model.engineConfig as { method: string });
    try {
      if (!kept.method.relearn) throw new UnlearningError('INVALID_REQUEST', `model ${model.id} (method ${kept.method.name}) cannot learn samples into a version`);
      const from =
        kept.model && kept.model.version === latest.version && kept.model.onnxSha256 === latest.onnxSha256 ? kept.model : await this.store.loadTrainedModel(latest);
      const testSet = await loadHeldOutSamples(this.dataSource, this.vault, model);
      const guard = guardOf(model.config);
      // The version it extends, on today's holdout (the one the new version's metrics are measured on).
      const before = testSet.length > 0 ? (await evaluateModel(from.onnx, from.onnxSha256, { retain: [], forget: [], test: testSet })).testAccuracy : undefined;
      const sink = new ModelLedgerSink(this.ledger, {
        onPublished: (published, events) => {
          const step = { modelId: model.id, modelVersion: published.modelVersion, fromVersion: from.version };
          const held =
            why.cause === 'learn'
              ? checkLearnGuard(guard, before, published.metrics.testAccuracy, { ...step, cause: 'learn', learnBatch: learnBatchOf(events, published.modelVersion) })
              : checkLearnGuard(guard, before, published.metrics.testAccuracy, { ...step, ...why });
          return held ? [held] : [];
        },
      });
      kept.job.ledger = sink;
      const append = why.cause === 'learn';
      const relearned = await kept.method.relearn(from, { samples, externalIds, append, ...(testSet.length > 0 ? { testSet } : {}) }).catch(async (error: unknown) => {
        await this.methods.drop(model.id);
        throw error;
      });
      const held = sink.learnHeldOf(model.id, relearned.version);
      await this.store.save(relearned, {
        ledgerIndex: sink.indexOf('MODEL_PUBLISHED', model.id, relearned.version)!,
        batches: sink.batchesOf(model.id, relearned.version),
        reflectsForgetRequests,
        ...(held ? { held: { figures: learnHeldFigures(held.event), ledgerIndex: held.ledgerIndex } } : {}),
      });
      if (held)
        this.logger.warn(
          `model ${model.id} version ${relearned.version}: held by its guard after a ${why.cause} (test accuracy -${held.event.drop.toFixed(4)}, limit ${held.event.maxTestAccuracyDrop})`,
        );
      // The checkpoints it made again were deleted when the samples were suspended: live now, they must not be
      // taken for deleted (a later forget of these samples deletes them again).
      await this.retirements.undecideCheckpointDeletions(relearned.shards.flatMap((s) => s.slices.map((slice) => slice.checkpoint)));
      kept.model = relearned;
      return relearned;
    } finally {
      this.methods.end(kept);
    }
  }

  /**
   * The sample rows the model's next version learns: the latest version's, and those of the request's samples that
   * the version before the suspension learned (held-out ones never were); and the latter alone.
   */
  private async findSamplesToRelearn(modelId: string, version: number, requestId: string): Promise<{ sampleIds: string[]; restored: Map<string, number> }> {
    const [{ suspended_in }]: { suspended_in: number | null }[] = await this.dataSource.query(
      `SELECT min(version) AS suspended_in FROM model_versions WHERE model_id = $1 AND $2 = ANY(reflects_forget_requests)`,
      [modelId, requestId],
    );
    const rows: { sample_id: string; restored: boolean; batch: number }[] = await this.dataSource.query(
      `SELECT m.sample_id, false AS restored, m.batch FROM model_version_samples m WHERE m.model_id = $1 AND m.version = $2
       UNION ALL
       SELECT m.sample_id, true, m.batch FROM model_version_samples m
         JOIN sample_commitments s ON s.id = m.sample_id
         JOIN forget_request_samples f ON f.commitment = s.commitment AND f.request_id = $4
        WHERE m.model_id = $1 AND m.version = $3`,
      [modelId, version, Number(suspended_in) - 1, requestId],
    );
    return { sampleIds: rows.map((r) => r.sample_id), restored: new Map(rows.filter((r) => r.restored).map((r) => [String(r.sample_id), r.batch])) };
  }
}

/** The learn batch a learn's version appended: the highest BATCH_LEARNED.learnBatch among its events. */
function learnBatchOf(events: EngineEvent[], version: number): number {
  const batches = events.flatMap((e) => (e.type === 'BATCH_LEARNED' && e.modelVersion === version && e.learnBatch !== undefined ? [e.learnBatch] : []));
  if (batches.length === 0) throw new Error(`version ${version}: a learn appended no learn batch`);
  return Math.max(...batches);
}

function learnHeldFigures(event: LearnHeld): HeldFigures {
  const { testAccuracyBefore, testAccuracyAfter, drop, maxTestAccuracyDrop, cause, fromVersion } = event;
  return { testAccuracyBefore, testAccuracyAfter, drop, maxTestAccuracyDrop, cause, fromVersion };
}
