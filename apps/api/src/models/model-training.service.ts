import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import {
  EngineDependencies,
  FileCheckpointStore,
  ProgressCallback,
  TrainingConfigInput,
  UnlearningMethod,
  createFullRetrainMethod,
  createSisaMethod,
  resolveStoredSchedule,
} from '@lethe/unlearning';
import { DATA_DIR } from '../config/config.provider';
import { withDatasetLock } from './dataset.lock';
import { loadTrainingSets } from './model-evaluation';
import { ModelEntity } from './model.entity';
import { ModelLedgerSink } from './model-ledger.sink';
import { ModelStore } from './model.store';

export interface TrainingResult {
  modelId: string;
  version: number;
  onnxSha256: string;
  ledgerIndex: number;
}

/** The engine's method for a config, with checkpoints in DATA_DIR/checkpoints and events into the log. */
export function createMethodFor(config: { method: string }, deps: EngineDependencies): UnlearningMethod {
  return config.method === 'sisa' ? createSisaMethod(deps) : createFullRetrainMethod(deps);
}

export function checkpointStoreIn(dataDir: string): FileCheckpointStore {
  // FileCheckpointStore keeps its files under <root>/checkpoints.
  return new FileCheckpointStore(dataDir);
}

/**
 * Runs a training job (in a worker): the dataset's committed, unshredded samples, less those named by a
 * forget request that has not failed and those the model's holdout keeps for testing (its test set), trained
 * with the engine; version 1 is recorded once its MODEL_PUBLISHED entry is durable. Running it again after a
 * crash gives the same version.
 */
@Injectable()
export class ModelTrainingService {
  private readonly logger = new Logger('Training');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    @Inject(DATA_DIR) private readonly dataDir: string,
  ) {}

  async train(modelId: string, onProgress: ProgressCallback): Promise<TrainingResult> {
    const models = this.dataSource.getRepository(ModelEntity);
    const model = await models.findOneByOrFail({ id: modelId });
    return withDatasetLock(this.dataSource, model.datasetId, 'shared', async () => {
      const existing = await this.store.findVersion(modelId, 1);
      if (!existing) {
        // With a holdout (evaluation.holdoutFraction), the held-out samples are the test set of the published metrics.
        const { train: samples, test } = await loadTrainingSets(this.dataSource, this.vault, model);
        const sink = new ModelLedgerSink(this.ledger);
        const method = createMethodFor(model.engineConfig as { method: string }, { store: checkpointStoreIn(this.dataDir), ledger: sink, onProgress });
        try {
          const trained = await method.train({
            modelId,
            config: resolveStoredSchedule(model.engineConfig as unknown as TrainingConfigInput),
            samples,
            ...(test.length > 0 ? { testSet: test } : {}),
          });
          const ledgerIndex = sink.indexOf('MODEL_PUBLISHED', modelId, trained.version)!;
          await this.store.save(trained, { ledgerIndex, batches: sink.batchesOf(modelId, trained.version) });
          this.logger.log(`model ${modelId} version 1 published (${trained.onnxSha256}, entry ${ledgerIndex})`);
        } finally {
          await method.release();
        }
      }
      await models.update({ id: modelId }, { state: 'ready', error: null, updatedAt: new Date() });
      const version = (await this.store.findVersion(modelId, 1))!;
      return { modelId, version: 1, onnxSha256: version.onnxSha256, ledgerIndex: Number(version.ledgerIndex) };
    });
  }

  async markFailed(modelId: string, error: string): Promise<void> {
    await this.dataSource.getRepository(ModelEntity).update({ id: modelId, state: 'training' }, { state: 'failed', error, updatedAt: new Date() });
  }
}
