import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ArtifactStore } from '@lethe/artifacts';
import { Ledger, SampleVault } from '@lethe/ledger';
import { biasScanMethodFor, computeBatchRoot, JsonValue, fairnessToJson, measureFairness, scanBiasByInfluence, scanBiasBySlices } from '@lethe/unlearning';
import { ARTIFACT_STORE } from '../config/config.provider';
import { DatasetEntity } from '../datasets/dataset.entity';
import { checkpointStoreIn } from '../models/kept-methods';
import { loadHeldOutSamples } from '../models/model-evaluation';
import { ModelEntity } from '../models/model.entity';
import { ModelStore } from '../models/model.store';

/** How many samples a bias scan by influence functions returns (the most influential first). */
export const BIAS_SCAN_CANDIDATES = 100;
/**
 * How many a leave-one-slice-out scan returns: the samples of one slice tie, so the candidates are whole slices'
 * samples, the most influential slices first (result.slices has every slice's influence and count).
 */
export const BIAS_SCAN_SLICE_CANDIDATES = 1000;

/**
 * A bias scan in a worker: the version's holdout figures by the dataset's protected column and its training
 * samples ranked by their influence on the gap between the groups: by influence functions for a logreg
 * (scanBiasByInfluence, the loss gap), by leave-one-slice-out for any other SISA model (scanBiasBySlices, the
 * equalized odds difference; each slice's shard retrained without it, its samples tied). The result names
 * samples by commitment only: their externalIds are private, and the job's row is readable by auditors; the ML
 * team's route (GET /v1/models/:id/bias-scans/:jobId) opens them from the vault. The scan is logged as
 * BIAS_SCANNED (counts, the gap, the root of the ranked commitments) before the job completes, once per job.
 */
@Injectable()
export class BiasScanRunner {
  private readonly logger = new Logger('BiasScan');

  constructor(
    private readonly dataSource: DataSource,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly ledger: Ledger,
    @Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore,
  ) {}

  async run(jobId: string, modelId: string, modelVersion: number, onProgress?: (fraction: number) => void): Promise<{ [key: string]: JsonValue }> {
    const model = await this.dataSource.getRepository(ModelEntity).findOneByOrFail({ id: modelId });
    const dataset = await this.dataSource.getRepository(DatasetEntity).findOneByOrFail({ id: model.datasetId });
    if (dataset.protectedFeature === null) throw new Error(`dataset ${dataset.id} declares no protectedFeature`);
    const row = await this.store.findVersion(modelId, modelVersion);
    if (!row) throw new Error(`model ${modelId} has no version ${modelVersion}`);
    const trained = await this.store.loadTrainedModel(row);
    const holdout = await loadHeldOutSamples(this.dataSource, this.vault, model);
    const commitmentOf = new Map(trained.samples.map((s) => [s.externalId, s.commitment]));
    const ranked = await this.rank(trained, holdout, dataset.protectedFeature, onProgress);
    const candidates = ranked.candidates.map((c) => ({ commitment: commitmentOf.get(c.externalId)!, influence: c.influence }));
    // Logged once per job: a job retried after its worker died between the append and completing it finds its entry.
    const [logged] = await this.ledger.findEntries({ type: 'BIAS_SCANNED', fields: { jobId }, limit: 1 });
    const entry =
      logged ??
      (await this.ledger.appendOne({
        type: 'BIAS_SCANNED',
        version: 1,
        jobId,
        modelId,
        modelVersion,
        method: ranked.method,
        metric: ranked.metric,
        gapBefore: ranked.gapBefore,
        candidates: candidates.length,
        candidatesRoot: computeBatchRoot(candidates.map((c) => c.commitment)),
      }));
    this.logger.log(`model ${modelId} version ${modelVersion}: bias scan ${jobId} (${ranked.method}) ranked ${candidates.length} samples, logged at ${entry.index}`);
    return {
      modelId,
      modelVersion,
      method: ranked.method,
      metric: ranked.metric,
      gapBefore: ranked.gapBefore,
      protectedFeature: dataset.protectedFeature,
      holdoutSamples: holdout.length,
      ...ranked.details,
      ledgerIndex: entry.index,
      candidates,
    };
  }

  /** The samples ranked by the method the model takes (biasScanMethodFor), with what each method reports beside them. */
  private async rank(
    trained: Awaited<ReturnType<ModelStore['loadTrainedModel']>>,
    holdout: Awaited<ReturnType<typeof loadHeldOutSamples>>,
    protectedFeature: number,
    onProgress?: (fraction: number) => void,
  ): Promise<{
    method: 'influence-functions' | 'leave-one-slice-out';
    metric: string;
    gapBefore: number;
    details: { [key: string]: JsonValue };
    candidates: { externalId: string; influence: number }[];
  }> {
    const method = biasScanMethodFor(trained.config);
    if (method === 'leave-one-slice-out') {
      const store = checkpointStoreIn(this.artifacts);
      const scan = await scanBiasBySlices({ store, log: (m) => this.logger.warn(m) }, trained, holdout, protectedFeature, { limit: BIAS_SCAN_SLICE_CANDIDATES, onProgress });
      return {
        method: scan.method,
        metric: scan.metric,
        gapBefore: scan.gapBefore,
        details: { fairness: fairnessToJson(scan.fairness), slices: scan.slices.map((s) => ({ ...s })) },
        candidates: scan.candidates,
      };
    }
    if (method !== 'influence-functions') throw new Error(`model ${trained.modelId} (${trained.config.method} ${trained.config.model}) takes no bias scan`);
    const scan = scanBiasByInfluence(trained, holdout, protectedFeature, BIAS_SCAN_CANDIDATES);
    const fairness = await measureFairness(trained.onnx, trained.onnxSha256, holdout, protectedFeature);
    onProgress?.(1);
    return {
      method: scan.method,
      metric: 'lossGap',
      gapBefore: scan.lossGap,
      details: { disadvantagedGroup: scan.disadvantagedGroup, advantagedGroup: scan.advantagedGroup, lossGap: scan.lossGap, fairness: fairnessToJson(fairness) },
      candidates: scan.candidates,
    };
  }
}
