import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { SampleVault } from '@lethe/ledger';
import { JsonValue, fairnessToJson, measureFairness, scanBiasByInfluence } from '@lethe/unlearning';
import { DatasetEntity } from '../datasets/dataset.entity';
import { loadHeldOutSamples } from '../models/model-evaluation';
import { ModelEntity } from '../models/model.entity';
import { ModelStore } from '../models/model.store';

/** How many samples a bias scan ranks (the most influential first). */
export const BIAS_SCAN_CANDIDATES = 100;

/**
 * A bias scan in a worker: the version's holdout figures by the dataset's protected column and its training
 * samples ranked by influence functions on the gap (scanBiasByInfluence). The result names samples by
 * commitment only: their externalIds are private, and the job's row is readable by auditors; the ML team's
 * route (GET /v1/models/:id/bias-scans/:jobId) opens them from the vault.
 */
@Injectable()
export class BiasScanRunner {
  constructor(
    private readonly dataSource: DataSource,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
  ) {}

  async run(modelId: string, modelVersion: number): Promise<{ [key: string]: JsonValue }> {
    const model = await this.dataSource.getRepository(ModelEntity).findOneByOrFail({ id: modelId });
    const dataset = await this.dataSource.getRepository(DatasetEntity).findOneByOrFail({ id: model.datasetId });
    if (dataset.protectedFeature === null) throw new Error(`dataset ${dataset.id} declares no protectedFeature`);
    const row = await this.store.findVersion(modelId, modelVersion);
    if (!row) throw new Error(`model ${modelId} has no version ${modelVersion}`);
    const trained = await this.store.loadTrainedModel(row);
    const holdout = await loadHeldOutSamples(this.dataSource, this.vault, model);
    const scan = scanBiasByInfluence(trained, holdout, dataset.protectedFeature, BIAS_SCAN_CANDIDATES);
    const fairness = await measureFairness(trained.onnx, trained.onnxSha256, holdout, dataset.protectedFeature);
    const commitmentOf = new Map(trained.samples.map((s) => [s.externalId, s.commitment]));
    return {
      modelId,
      modelVersion,
      method: scan.method,
      protectedFeature: dataset.protectedFeature,
      holdoutSamples: holdout.length,
      disadvantagedGroup: scan.disadvantagedGroup,
      advantagedGroup: scan.advantagedGroup,
      lossGap: scan.lossGap,
      fairness: fairnessToJson(fairness),
      candidates: scan.candidates.map((c) => ({ commitment: commitmentOf.get(c.externalId)!, influence: c.influence })),
    };
  }
}
