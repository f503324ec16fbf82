import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { PhaseClock, ProgressCallback, TrainingConfigInput, resolveStoredSchedule } from '@lethe/unlearning';
import { withDatasetLock } from './dataset.lock';
import { KeptMethods } from './kept-methods';
import { findProtectedFeature, loadTrainingSets } from './model-evaluation';
import { ModelEntity } from './model.entity';
import { ModelLedgerSink } from './model-ledger.sink';
import { putNoiseSeeds } from './noise-seeds';
import { ModelStore } from './model.store';

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
 * crash gives the same version. The worker keeps the method and version 1 (KeptMethods) for the model's first forget.
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
  ) {}

  /** `jobId`: the training's job, whose shard tasks (one per shard, on every worker) train the version. */
  async train(modelId: string, onProgress: ProgressCallback, options: { jobId?: string } = {}): Promise<TrainingResult> {
    const models = this.dataSource.getRepository(ModelEntity);
    const clock = new PhaseClock();
    const model = await models.findOneByOrFail({ id: modelId });
    return withDatasetLock(this.dataSource, model.datasetId, 'shared', async () => {
      const existing = await this.store.findVersion(modelId, 1);
      let timings: TrainingResult['timings'];
      if (!existing) {
        clock.lap('lock');
        // With a holdout (evaluation.holdoutFraction), the held-out samples are the test set of the published metrics.
        const { train: samples, test } = await loadTrainingSets(this.dataSource, this.vault, model);
        clock.lap('samples');
        const sink = new ModelLedgerSink(this.ledger);
        const kept = await this.methods.keep(modelId, model.engineConfig as { method: string });
        this.methods.lend(kept, { ledger: sink, onProgress, jobId: options.jobId });
        try {
          const trained = await kept.method.train({
            modelId,
            config: resolveStoredSchedule(putNoiseSeeds(model.engineConfig, await this.store.noiseSeeds.open(model)) as unknown as TrainingConfigInput),
            samples,
            ...(test.length > 0 ? { testSet: test } : {}),
            ...(await findProtectedFeature(this.dataSource, model)),
            clock,
          });
          const ledgerIndex = sink.indexOf('MODEL_PUBLISHED', modelId, trained.version)!;
          await this.store.save(trained, { ledgerIndex, batches: sink.batchesOf(modelId, trained.version) }, (step) => clock.lap(step));
          kept.model = trained;
          timings = { seconds: { ...clock.seconds }, cpuSeconds: { ...clock.cpuSeconds } };
          this.logger.log(`model ${modelId} version 1 published (${trained.onnxSha256}, entry ${ledgerIndex})`);
        } catch (error) {
          await this.methods.drop(modelId);
          throw error;
        } finally {
          this.methods.end(kept);
        }
      }
      await models.update({ id: modelId }, { state: 'ready', error: null, updatedAt: new Date() });
      const version = (await this.store.findVersion(modelId, 1))!;
      return { modelId, version: 1, onnxSha256: version.onnxSha256, ledgerIndex: Number(version.ledgerIndex), ...(timings ? { timings } : {}) };
    });
  }

  async markFailed(modelId: string, error: string): Promise<void> {
    await this.dataSource.getRepository(ModelEntity).update({ id: modelId, state: 'training' }, { state: 'failed', error, updatedAt: new Date() });
  }
}
