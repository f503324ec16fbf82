import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SampleVault } from '@lethe/ledger';
import { biasScanMethodFor, countScannedSlices, MAX_SCANNED_SLICES, ShardRecord } from '@lethe/unlearning';
import { Principal } from '../auth/role';
import { DatasetEntity } from '../datasets/dataset.entity';
import { BIAS_SCAN_JOB } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { JobService } from '../jobs/job.service';
import { evaluationSettingsOf } from './model.dto';
import { ModelEntity } from './model.entity';
import { ModelStore } from './model.store';

export interface BiasScanCandidate {
  /** Null when the sample was forgotten since the scan (its data, externalId included, is erased). */
  externalId: string | null;
  influence: number;
}

/** A bias scan as the ML team reads it: the job's state, and once completed its result with the candidates by externalId. */
export interface BiasScanResponse {
  jobId: string;
  modelId: string;
  modelVersion: number;
  state: string;
  progress: number;
  error?: string;
  result?: Record<string, unknown> & { candidates: BiasScanCandidate[] };
}

/**
 * Bias scans (POST /v1/models/:id/bias-scan, a job in the workers, see BiasScanRunner). Only what a scan can work
 * on is queued: a dataset that declares its protected column, a model a method can scan (biasScanMethodFor: a
 * logreg trained by SGD by influence functions, any other SISA model by leave-one-slice-out, within
 * MAX_SCANNED_SLICES slices), a holdout to measure the gap on, and a served version.
 */
@Injectable()
export class BiasScanService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly vault: SampleVault,
    private readonly jobService: JobService,
    private readonly jobs: JobRepository,
    private readonly store: ModelStore,
  ) {}

  async start(modelId: string, principal: Principal | undefined): Promise<{ jobId: string; modelId: string; modelVersion: number }> {
    const model = await this.findModel(modelId);
    const dataset = await this.dataSource.getRepository(DatasetEntity).findOneByOrFail({ id: model.datasetId });
    if (dataset.protectedFeature === null)
      throw new ConflictException(`protectedFeature: dataset ${dataset.id} declares no protectedFeature (the column of the group id), so there is no gap to scan for`);
    const config = model.engineConfig as { method: string; model: string; aggregation?: string };
    const method = biasScanMethodFor(config);
    if (method === undefined)
      throw new ConflictException(
        `architecture: bias scans work on SISA models of any architecture (leave-one-slice-out) and on logregs trained by SGD, full or sisa (influence functions); ` +
          `model ${modelId} is a ${config.method} ${config.model}: train it with method sisa to scan it`,
      );
    if (evaluationSettingsOf(model.config).holdoutFraction === 0)
      throw new ConflictException(`evaluation.holdoutFraction: model ${modelId} holds no samples out, and the gap is measured on the holdout`);
    const latest = await this.store.findLatest(modelId);
    if (!latest || latest.retiredAt !== null || model.state !== 'ready') throw new ConflictException(`model ${modelId} serves no version to scan (state ${model.state})`);
    if (method === 'leave-one-slice-out') checkSliceScan(modelId, latest.version, latest.engineState as { shards: ShardRecord[]; manifest: Record<string, unknown> });
    const jobId = randomUUID();
    await this.dataSource.transaction((manager) =>
      this.jobService.insert(manager, jobId, BIAS_SCAN_JOB, { modelId, modelVersion: latest.version }, principal?.keyId ?? null),
    );
    await this.jobService.send(jobId);
    return { jobId, modelId, modelVersion: latest.version };
  }

  async get(modelId: string, jobId: string): Promise<BiasScanResponse> {
    const model = await this.findModel(modelId);
    const job = await this.jobs.findById(jobId);
    if (!job || job.type !== BIAS_SCAN_JOB || job.payload.modelId !== modelId) throw new NotFoundException(`model ${modelId} has no bias scan ${jobId}`);
    const out: BiasScanResponse = { jobId, modelId, modelVersion: Number(job.payload.modelVersion), state: job.state, progress: job.progress };
    if (job.error !== null) out.error = job.error;
    if (job.state !== 'completed' || job.result === null) return out;
    const { candidates, ...rest } = job.result as { candidates: { commitment: string; influence: number }[] };
    const wanted = new Set(candidates.map((c) => c.commitment));
    const opened = await this.vault.readSamples({ datasetId: model.datasetId });
    const externalIdOf = new Map(opened.filter((s) => wanted.has(s.commitment)).map((s) => [s.commitment, s.externalId]));
    out.result = { ...rest, candidates: candidates.map((c) => ({ externalId: externalIdOf.get(c.commitment) ?? null, influence: c.influence })) };
    return out;
  }

  private async findModel(id: string): Promise<ModelEntity> {
    const model = await this.dataSource.getRepository(ModelEntity).findOneBy({ id });
    if (!model) throw new NotFoundException(`no model with id ${id}`);
    return model;
  }
}

/** A leave-one-slice-out scan retrains each non-empty slice: refused beyond MAX_SCANNED_SLICES, and for a version approximate unlearning made. */
function checkSliceScan(modelId: string, version: number, state: { shards: ShardRecord[]; manifest: Record<string, unknown> }): void {
  const slices = countScannedSlices(state);
  if (slices > MAX_SCANNED_SLICES)
    throw new ConflictException(
      `slices: model ${modelId} version ${version} has ${slices} non-empty slices; a leave-one-slice-out scan retrains each, and the limit is ${MAX_SCANNED_SLICES} (shards x slices)`,
    );
  if (state.manifest?.approximate !== undefined)
    throw new ConflictException(`model ${modelId} version ${version} was made by approximate unlearning (its members are not its checkpoints): scan the exact version after it`);
}
