import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, IsNull, Not } from 'typeorm';
import { FoundSample, Ledger, SampleVault } from '@lethe/ledger';
import { Principal } from '../auth/role';
import { parseIntegerParam } from '../common/query-params';
import { CreateDatasetDto, CreatedDatasetResponseDto, DatasetResponseDto, DatasetSampleCountsDto, toDatasetResponse } from './dataset.dto';
import { DatasetEntity } from './dataset.entity';

/** Registers datasets (DATASET_REGISTERED) and describes them; never returns sample data. */
@Injectable()
export class DatasetService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly sampleVault: SampleVault,
  ) {}

  async create(body: CreateDatasetDto, principal: Principal | undefined): Promise<CreatedDatasetResponseDto> {
    if (body.protectedFeature !== undefined && body.protectedFeature >= body.features)
      throw new BadRequestException(`protectedFeature: column ${body.protectedFeature} is beyond the dataset's ${body.features} features (0..${body.features - 1})`);
    const id = randomUUID();
    const repository = this.dataSource.getRepository(DatasetEntity);
    // The row first, then the entry, then the row points at it: a crash in between leaves a row
    // without ledger_index, which is not a dataset (findRegistered ignores it).
    const protectedFeature = body.protectedFeature ?? null;
    await repository.insert({
      id,
      name: body.name,
      features: body.features,
      classes: body.classes,
      retentionDays: body.retentionDays ?? null,
      protectedFeature,
      createdBy: principal?.keyId ?? null,
      ledgerIndex: null,
    });
    const entry = await this.ledger.appendOne({
      type: 'DATASET_REGISTERED',
      version: 1,
      datasetId: id,
      name: body.name,
      features: body.features,
      classes: body.classes,
      ...(body.retentionDays !== undefined ? { retentionDays: body.retentionDays } : {}),
      ...(protectedFeature !== null ? { protectedFeature } : {}),
    });
    await repository.update(id, { ledgerIndex: String(entry.index) });
    return { id, ledgerIndex: entry.index, leafHash: entry.leafHash };
  }

  async get(id: string): Promise<DatasetResponseDto> {
    const dataset = await this.findRegistered(id);
    return toDatasetResponse(dataset, await this.countSamples(id));
  }

  async list(query: { start?: unknown; limit?: unknown }): Promise<DatasetResponseDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: 1000 });
    const datasets = await this.dataSource.getRepository(DatasetEntity).find({
      where: { ledgerIndex: Not(IsNull()) },
      order: { ledgerIndex: 'ASC' },
      skip: start,
      take: limit,
    });
    return Promise.all(datasets.map(async (d) => toDatasetResponse(d, await this.countSamples(d.id))));
  }

  /** A registered dataset, or a 404 naming it. */
  async findRegistered(id: string): Promise<DatasetEntity> {
    const dataset = await this.dataSource.getRepository(DatasetEntity).findOne({ where: { id, ledgerIndex: Not(IsNull()) } });
    if (!dataset) throw new NotFoundException(`no dataset with id ${id}`);
    return dataset;
  }

  /**
   * The stored samples of the dataset named by externalIds or by subject, in upload order, committed ones
   * and orphans (stored by an upload that stopped before logging them) alike; erased ones are not found.
   */
  findSamples(datasetId: string, by: { externalIds: string[] } | { subjectId: string }): Promise<FoundSample[]> {
    return this.sampleVault.findSamples(datasetId, by);
  }

  private countSamples(id: string): Promise<DatasetSampleCountsDto> {
    return this.sampleVault.countSamples(id);
  }
}
