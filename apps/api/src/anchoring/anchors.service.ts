import { Inject, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { parseIntegerParam } from '../common/query-params';
import { AnchorRecordEntity } from './anchor-record.entity';
import { AnchorResponseDto, toAnchorResponse } from './anchors.dto';
import { AnchoringLoop } from './anchoring-loop';

export const ANCHORING_LOOP = Symbol('ANCHORING_LOOP');

/** Confirmed anchors, as recorded by the anchoring loop, with live confirmation counts. */
@Injectable()
export class AnchorsService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(ANCHORING_LOOP) private readonly loop: AnchoringLoop | null,
  ) {}

  async list(query: { start?: unknown; limit?: unknown }): Promise<AnchorResponseDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: 1000 });
    const records = await this.dataSource.getRepository(AnchorRecordEntity).find({
      where: { state: 'confirmed' },
      order: { id: 'ASC' },
      skip: start,
      take: limit,
    });
    const head = await this.loop?.getChainHead();
    return records.map((r) => toAnchorResponse(r, head));
  }

  async latest(): Promise<AnchorResponseDto> {
    const head = await this.loop?.getChainHead();
    const record = await this.dataSource.getRepository(AnchorRecordEntity).findOne({
      where: head ? { state: 'confirmed', chainId: head.chainId, genesisHash: head.genesisHash, contract: head.contract } : { state: 'confirmed' },
      order: { treeSize: 'DESC' },
    });
    if (!record) throw new NotFoundException('no checkpoint is anchored yet');
    return toAnchorResponse(record, head);
  }
}
