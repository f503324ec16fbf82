import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { LedgerSink, PhaseClock, ProgressCallback, Sample, TrainingConfigInput, UnlearningError, resolveStoredSchedule } from '@lethe/unlearning';
import { describeJobError, isPermanentJobError } from '../jobs/job.errors';
import { withDatasetLock } from './dataset.lock';
import { KeptMethods } from './kept-methods';
import { TrainingPlan, findProtectedFeature, loadPlannedSets, loadTrainingSets } from './model-evaluation';
import { ModelEntity } from './model.entity';
import { ModelLedgerSink } from './model-ledger.sink';
import { putNoiseSeeds } from './noise-seeds';
import { ModelStore } from './model.store';
import { OpenedSamples } from './opened-samples';

export interface TrainingResult {
  modelId: string;
  version: number;
  onnxSha256: string;
  ledgerIndex: number;
  /**
   * Where this attempt's time went in its worker (wall-clock and CPU seconds by phase: lock, samples, then the
   * engine's plan (with taking the method, the noise seeds, checking the samples), tasks (waiting for the shard tasks), train, members, export, evaluateAfter, checkpointWrites,
   * manifest, ledger, and save.onnx, save.row, save.samples, save.batches, save.commit): a report for operators and the scale bench. None when the version existed already.
   */
  timings?: { seconds: { [phase: string]: number }; cpuSeconds: { [phase: string]: number } };
}

/**
 * Runs a training job (in a worker): the dataset's committed, unshredded samples, less those named by a
 * forget request that has not failed and those the model's holdout keeps for testing (its test set), trained
 * with the engine; version 1 is recorded once its MODEL_PUBLISHED entry is durable. Running it again after a
 * crash gives the same version: the plan (which samples, in which order) is stored before the first append and,
 * once the log holds the version, trained again rather than taken from the dataset as it is then. The worker keeps the method and version 1 (KeptMethods) for the model's first forget.
 */
@Injectable()
export class ModelTrainingService {
  private readonly logger = new Logger('Training');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly methods: KeptMethods,
    private readonly opened: OpenedSamples,
  ) {}

  /** `jobId`: the training's job, whose shard tasks (one per shard, on every worker) train the version. */
  async train(modelId: string, onProgress: ProgressCallback, options: { jobId?: string } = {}): Promise<TrainingResult> {
    const clock = new PhaseClock();
    const model = await this.dataSource.getRepository(ModelEntity).findOneByOrFail({ id: modelId });
    return withDatasetLock(this.dataSource, model.datasetId, 'shared', async () => {
      let timings: TrainingResult['timings'];
      if (!(await this.store.findVersion(modelId, 1))) {
        clock.lap('lock');
        await this.trainVersion1(model, onProgress, clock, options.jobId);
        timings = { seconds: { ...clock.seconds }, cpuSeconds: { ...clock.cpuSeconds } };
      }
      await this.markReady(modelId);
      const version = (await this.store.findVersion(modelId, 1))!;
      return { modelId, version: 1, onnxSha256: version.onnxSha256, ledgerIndex: Number(version.ledgerIndex), ...(timings ? { timings } : {}) };
    });
  }

  /**
   * For a forget pass, which holds the dataset alone (so no training of it runs): finishes the trainings of the
   * dataset's models in `training` (`training`, oldest first; the pass read them with its ready models) that stopped after their version 1 was logged (its MODEL_PUBLISHED) or recorded, but before the model was
   * `ready` (their worker died; their job's retry would come later). Each is trained again from its plan and
   * recorded, so the pass forgets the requests' samples from the version the log says learned them, as it does
   * when no crash came between. A training whose plan can no longer be trained (a planned sample shredded) fails
   * alone (the model `failed`, naming the cause). Returns the models made ready.
   */
  async finishLoggedTrainings(training: ModelEntity[]): Promise<string[]> {
    const finished: string[] = [];
    for (const model of training) {
      if (!(await this.store.findVersion(model.id, 1))) {
        if (!(await this.findLoggedVersion1(model.id))) continue; // not trained yet, or stopped before its append: its job plans it then
        this.logger.warn(`model ${model.id} version 1 is logged but was not recorded (its training stopped): training its plan again first`);
        try {
          await this.trainVersion1(model, () => undefined, new PhaseClock());
        } catch (error) {
          if (!isPermanentJobError(error)) throw error;
          await this.markFailed(model.id, describeJobError(error));
          this.logger.error(`model ${model.id} fails: ${describeJobError(error)}`);
          continue;
        }
      }
      await this.markReady(model.id);
      finished.push(model.id);
    }
    return finished;
  }

  /**
   * Trains version 1 and records it. Its plan (the ordered ids of its training and test sets) is stored before the
   * engine's first ledger append; when the log already holds its MODEL_PUBLISHED (a training stopped before its row),
   * that plan is trained again, whatever was uploaded or forgotten since: the same bytes, so the sink reuses the
   * logged entries and the row is saved.
   */
  private async trainVersion1(model: ModelEntity, onProgress: ProgressCallback, clock: PhaseClock, jobId?: string): Promise<void> {
    const modelId = model.id;
    // Read while the samples are: the model's noise seeds and the dataset's protected column (a round trip each).
    const seeds = settledLater(this.store.noiseSeeds.open(model));
    const protectedFeature = settledLater(findProtectedFeature(this.dataSource, model));
    // With a holdout (evaluation.holdoutFraction), the held-out samples are the test set of the published metrics.
    const { train: samples, test, planStored } = await this.planTraining(model);
    clock.lap('samples');
    const sink = new ModelLedgerSink(this.ledger);
    // The plan is stored while the shard tasks train, and durable before the engine's first append (its only one,
    // once every shard is trained), which waits for it: a failed store fails the training before anything is logged.
    const ledger = appendingAfter(sink, planStored);
    const kept = await this.methods.keep(modelId, model.engineConfig as { method: string });
    this.methods.lend(kept, { ledger, onProgress, jobId });
    // This worker's shard tasks of the training take their samples from these, not from the vault again.
    const release = this.opened.hold(samples);
    try {
      const trained = await kept.method.train({
        modelId,
        config: resolveStoredSchedule(putNoiseSeeds(model.engineConfig, await seeds) as unknown as TrainingConfigInput),
        samples,
        ...(test.length > 0 ? { testSet: test } : {}),
        ...(await protectedFeature),
        clock,
      });
      const ledgerIndex = sink.indexOf('MODEL_PUBLISHED', modelId, trained.version)!;
      await this.store.save(trained, { ledgerIndex, batches: sink.batchesOf(modelId, trained.version) }, (step) => clock.lap(step));
      kept.model = trained;
      this.logger.log(`model ${modelId} version 1 published (${trained.onnxSha256}, entry ${ledgerIndex})`);
    } catch (error) {
      await this.methods.drop(modelId);
      throw error;
    } finally {
      this.methods.end(kept);
      release();
      await planStored.catch(() => undefined); // never still running once the attempt ends (a retry stores its own)
    }
  }

  /**
   * The sets version 1 trains on: its stored plan once the log holds its MODEL_PUBLISHED, else the dataset now, with
   * `planStored` storing its plan (begun, not awaited: the training waits for it before its first append).
   */
  private async planTraining(model: ModelEntity): Promise<{ train: Sample[]; test: Sample[]; planStored: Promise<unknown> }> {
    const logged = await this.findLoggedVersion1(model.id);
    if (!logged) {
      const { train, test, plan } = await loadTrainingSets(this.dataSource, this.vault, model);
      const planStored = settledLater(this.dataSource.query(`UPDATE models SET training_plan = $2 WHERE id = $1`, [model.id, JSON.stringify(plan)]));
      return { train, test, planStored };
    }
    const [row]: { plan: TrainingPlan | null }[] = await this.dataSource.query(`SELECT training_plan AS plan FROM models WHERE id = $1`, [model.id]);
    if (!row?.plan)
      throw new UnlearningError(
        'INVALID_REQUEST',
        `model ${model.id} version 1 is logged (entry ${logged.index}) but its training plan was not stored (a training begun before plans were): it cannot be trained again to the logged bytes`,
      );
    return { ...(await loadPlannedSets(this.dataSource, this.vault, model.id, row.plan)), planStored: Promise.resolve() };
  }

  private async findLoggedVersion1(modelId: string): Promise<{ index: number } | undefined> {
    const [logged] = await this.ledger.findEntries({ type: 'MODEL_PUBLISHED', fields: { modelId, modelVersion: 1 }, limit: 1 });
    return logged;
  }

  /** Version 1 is recorded: the model is served, and its plan no longer needed. */
  private async markReady(modelId: string): Promise<void> {
    await this.dataSource.query(`UPDATE models SET state = 'ready', error = NULL, training_plan = NULL, updated_at = now() WHERE id = $1`, [modelId]);
  }

  async markFailed(modelId: string, error: string): Promise<void> {
    await this.dataSource.getRepository(ModelEntity).update({ id: modelId, state: 'training' }, { state: 'failed', error, updatedAt: new Date() });
  }
}

/** `sink`, whose appends wait for `before` first, and fail with its error, appending nothing, when it fails. */
export function appendingAfter(sink: LedgerSink, before: Promise<unknown>): LedgerSink {
  return { append: async (events) => sink.append(await before.then(() => events)) };
}

/** `promise`, whose rejection is handled where it is awaited later: until then it is not an unhandled rejection. */
function settledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
