import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { JsonValue, ProgressCallback } from '@lethe/unlearning';
import { withDatasetLock } from '../models/dataset.lock';
import { ModelEntity } from '../models/model.entity';
import { ModelLedgerSink } from '../models/model-ledger.sink';
import { checkpointStoreIn, createMethodFor } from '../models/model-training.service';
import { ModelStore } from '../models/model.store';

export interface UnlearningPassResult {
  requestIds: string[];
  modelVersions: { modelId: string; version: number }[];
}

/**
 * Carries forget requests through to unlearning (in a worker). One pass takes every request of a dataset
 * that waits (`received`, or `unlearning` left by a worker that died), moves them to `unlearning`, and for
 * every ready model of the dataset that learned any of their samples runs the model's method's forget
 * once for all of them (MODEL_PUBLISHED + UNLEARN_COMPLETED with evidence), records the new version,
 * then shreds the samples and completes the requests. Passes on one dataset never overlap (the dataset
 * lock), and a pass that is run again skips the models it already unlearned.
 */
export class UnlearningService {
  private readonly logger = new Logger('Unlearning');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly dataDir: string,
  ) {}

  async unlearnDataset(datasetId: string, onProgress?: ProgressCallback): Promise<UnlearningPassResult> {
    return withDatasetLock(this.dataSource, datasetId, 'exclusive', async () => {
      await this.dataSource.query(
        `UPDATE forget_requests SET state = 'unlearning', error = NULL, updated_at = now()
          WHERE dataset_id = $1 AND state = 'received' AND ledger_index IS NOT NULL`,
        [datasetId],
      );
      const requests: { id: string }[] = await this.dataSource.query(
        `SELECT id FROM forget_requests WHERE dataset_id = $1 AND state = 'unlearning' ORDER BY ledger_index`,
        [datasetId],
      );
      const requestIds = requests.map((r) => r.id);
      if (requestIds.length === 0) return { requestIds, modelVersions: [] };
      try {
        const modelVersions = await this.forgetInEveryModel(datasetId, requestIds, onProgress);
        const samples: { commitment: string }[] = await this.dataSource.query(
          `SELECT DISTINCT commitment FROM forget_request_samples WHERE request_id = ANY($1::uuid[])`,
          [requestIds],
        );
        const shred = await this.vault.shred(samples.map((s) => s.commitment));
        await this.dataSource.query(`UPDATE forget_requests SET state = 'completed', updated_at = now() WHERE id = ANY($1::uuid[])`, [requestIds]);
        this.logger.log(
          `forget requests ${requestIds.join(', ')}: ${modelVersions.length} model version(s) published, ${shred.shredded.length} sample(s) shredded`,
        );
        return { requestIds, modelVersions };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.logger.error(`forget requests ${requestIds.join(', ')} failed: ${message}`);
        await this.dataSource.query(`UPDATE forget_requests SET state = 'failed', error = $2, updated_at = now() WHERE id = ANY($1::uuid[])`, [
          requestIds,
          message.slice(0, 2000),
        ]);
        return { requestIds, modelVersions: [] };
      }
    });
  }

  private async forgetInEveryModel(datasetId: string, requestIds: string[], onProgress?: ProgressCallback): Promise<{ modelId: string; version: number }[]> {
    const rows: { external_id: string | null }[] = await this.dataSource.query(
      `SELECT DISTINCT s.external_id FROM forget_request_samples f JOIN samples s ON s.commitment = f.commitment
        WHERE f.request_id = ANY($1::uuid[]) AND s.external_id IS NOT NULL`,
      [requestIds],
    );
    const externalIds = new Set(rows.map((r) => r.external_id!));
    const models = await this.dataSource.getRepository(ModelEntity).find({ where: { datasetId, state: 'ready' }, order: { createdAt: 'ASC' } });
    const published: { modelId: string; version: number }[] = [];
    for (const model of models) {
      const latest = await this.store.findLatest(model.id);
      if (!latest) continue;
      if (requestIds.every((id) => latest.reflectsForgetRequests.includes(id))) {
        // An earlier run of this pass got this far before it stopped.
        if (latest.unlearnLedgerIndex !== null) published.push({ modelId: model.id, version: latest.version });
        continue;
      }
      const trained = await this.store.loadTrainedModel(latest);
      const learned = trained.samples.filter((s) => externalIds.has(s.externalId)).map((s) => s.externalId);
      if (learned.length === 0) continue;
      const sink = new ModelLedgerSink(this.dataSource, this.ledger);
      const method = createMethodFor(trained.config, { store: checkpointStoreIn(this.dataDir), ledger: sink, onProgress });
      try {
        const outcome = await method.forget(trained, { requestIds, externalIds: learned });
        const version = outcome.model.version;
        await this.store.save(outcome.model, {
          ledgerIndex: sink.indexOf('MODEL_PUBLISHED', model.id, version)!,
          unlearnLedgerIndex: sink.indexOf('UNLEARN_COMPLETED', model.id, version)!,
          reflectsForgetRequests: [...new Set([...latest.reflectsForgetRequests, ...requestIds])],
          evidence: outcome.event.evidence as { [key: string]: JsonValue },
        });
        published.push({ modelId: model.id, version });
      } finally {
        await method.release();
      }
    }
    return published;
  }
}
