import { Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, IsNull, Not } from 'typeorm';
import { Ledger } from '@lethe/ledger';
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
  ) {}

  async create(body: CreateDatasetDto, principal: Principal | undefined): Promise<CreatedDatasetResponseDto> {
    const id = randomUUID();
    const repository = this.dataSource.getRepository(DatasetEntity);
    // The row first, then the entry, then the row points at it: a crash in between leaves a row
    // without ledger_index, which is not a dataset (findRegistered ignores it).
    await repository.insert({ id, name: body.name, features: body.features, classes: body.classes, createdBy: principal?.keyId ?? null, ledgerIndex: null });
    const entry = await this.ledger.appendOne({
      type: 'DATASET_REGISTERED',
      version: 1,
      datasetId: id,
      name: body.name,
      features: body.features,
      classes: body.classes,
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

  /** The commitments of a subject's committed samples, in upload order. */
  async findSubjectCommitments(datasetId: string, subjectId: string): Promise<string[]> {
    const rows: { commitment: string }[] = await this.dataSource.query(
      `SELECT commitment FROM samples WHERE dataset_id = $1 AND subject_id = $2 AND ledger_index IS NOT NULL ORDER BY ledger_index, batch_position, id`,
      [datasetId, subjectId],
    );
    return rows.map((r) => r.commitment);
  }

  /** The committed samples of the dataset among `externalIds`, with their commitments, in upload order. */
  async findSampleCommitments(datasetId: string, externalIds: string[]): Promise<{ externalId: string; commitment: string }[]> {
    const rows: { external_id: string; commitment: string }[] = await this.dataSource.query(
      `SELECT external_id, commitment FROM samples WHERE dataset_id = $1 AND external_id = ANY($2::text[]) AND ledger_index IS NOT NULL
        ORDER BY ledger_index, batch_position, id`,
      [datasetId, externalIds],
    );
    return rows.map((r) => ({ externalId: r.external_id, commitment: r.commitment }));
  }

  private async countSamples(id: string): Promise<DatasetSampleCountsDto> {
    const [row]: { committed: number; forgotten: number }[] = await this.dataSource.query(
      `SELECT count(*)::int AS committed, count(shredded_at)::int AS forgotten FROM samples WHERE dataset_id = $1 AND ledger_index IS NOT NULL`,
      [id],
    );
    return row;
  }
}
