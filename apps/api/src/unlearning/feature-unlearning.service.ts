import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { JsonValue } from '@lethe/unlearning';
import { KeptMethods } from '../models/kept-methods';
import { findProtectedFeature, loadHeldOutSamples } from '../models/model-evaluation';
import { ModelEntity } from '../models/model.entity';
import { ModelLedgerSink } from '../models/model-ledger.sink';
import { ModelStore } from '../models/model.store';
import { RetiringVersion } from '../models/retirement.store';
import { RetirementService } from './retirement.service';

/**
 * Feature-level unlearning, a step of a dataset's unlearning pass: each request (in log order) trains every
 * ready model of the dataset again from scratch without its columns (the engine's forgetFeatures: masked in
 * training and in the published graph), publishes that as the model's next version with an UNLEARN_COMPLETED
 * naming the columns, and retires every earlier live version of the model in the same append (they read the
 * columns). A model already reflecting a request (a pass run again) is skipped.
 */
@Injectable()
export class FeatureUnlearningService {
  private readonly logger = new Logger('FeatureUnlearning');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly vault: SampleVault,
    private readonly store: ModelStore,
    private readonly retirement: RetirementService,
    private readonly methods: KeptMethods,
  ) {}

  /** Serves the feature requests (id -> columns, in log order) on every ready model of the dataset; returns the versions published. */
  async forgetFeatures(datasetId: string, requests: Map<string, number[]>): Promise<{ modelId: string; version: number }[]> {
    const published: { modelId: string; version: number }[] = [];
    const models = await this.dataSource.getRepository(ModelEntity).find({ where: { datasetId, state: 'ready' }, order: { createdAt: 'ASC' } });
    for (const [requestId, features] of requests) {
      for (const model of models) {
        const latest = await this.store.findLatest(model.id);
        if (!latest || latest.reflectsForgetRequests.includes(requestId)) continue;
        if ((model.engineConfig as { method?: string }).method === 'certified') {
          this.logger.warn(`model ${model.id} is certified and cannot mask columns: forget request ${requestId} leaves it as it is`);
          continue;
        }
        const kept = this.methods.get(model.id);
        const from =
          kept?.model && kept.model.version === latest.version && kept.model.onnxSha256 === latest.onnxSha256 ? kept.model : await this.store.loadTrainedModel(latest);
        const live: { version: number; onnx_sha256: string }[] = await this.dataSource.query(
          `SELECT version, onnx_sha256 FROM model_versions WHERE model_id = $1 AND retired_at IS NULL ORDER BY version`,
          [model.id],
        );
        const superseded: RetiringVersion[] = live.map((v) => ({ version: v.version, onnxSha256: v.onnx_sha256, forgetRequestIds: [requestId] }));
        const sink = new ModelLedgerSink(this.ledger, { onUnlearned: () => this.retirement.retireWithUnlearning(model.id, [requestId], superseded) });
        const held = await this.methods.keep(model.id, from.config);
        const { method, job } = held;
        job.ledger = sink;
        try {
          const testSet = await loadHeldOutSamples(this.dataSource, this.vault, model);
          const outcome = await method.forgetFeatures!(from, {
            requestIds: [requestId],
            features,
            ...(testSet.length > 0 ? { testSet } : {}),
            ...(await findProtectedFeature(this.dataSource, model)),
          }).catch(async (error: unknown) => {
            await this.methods.drop(model.id);
            throw error;
          });
          held.model = outcome.model; // the method this job holds (an eviction meanwhile takes it out of the map)
          const version = outcome.model.version;
          await this.store.save(outcome.model, {
            ledgerIndex: sink.indexOf('MODEL_PUBLISHED', model.id, version)!,
            unlearnLedgerIndex: sink.indexOf('UNLEARN_COMPLETED', model.id, version)!,
            reflectsForgetRequests: [...new Set([...latest.reflectsForgetRequests, requestId])],
            evidence: outcome.event.evidence as { [key: string]: JsonValue },
            batches: sink.batchesOf(model.id, version),
            guarantee: outcome.event.guarantee ?? { kind: 'exact' },
          });
          published.push({ modelId: model.id, version });
          this.logger.log(`model ${model.id} version ${version}: trained without column(s) ${features.join(', ')} (forget request ${requestId})`);
        } finally {
          this.methods.end(held);
        }
      }
    }
    return published;
  }
}
