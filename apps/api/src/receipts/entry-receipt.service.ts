import { Inject, Injectable } from '@nestjs/common';
import { DataSource, FindOptionsWhere, MoreThan } from 'typeorm';
import { LedgerError } from '@lethe/events';
import { Ledger } from '@lethe/ledger';
import { AnchorRecordEntity } from '../anchoring/anchor-record.entity';
import { toAnchorResponse } from '../anchoring/anchors.dto';
import { AnchoringLoop } from '../anchoring/anchoring-loop';
import { ANCHORING_LOOP } from '../anchoring/anchors.service';
import { EntryReceiptDto } from './receipt.dto';


/**
 * The receipt of one log entry: its canonical JSON, an inclusion proof at the latest anchored size (so
 * it checks directly against a root stored on-chain) or, before any anchor covers it, at the latest
 * size, and the anchors that cover it. Anchors are those of the chain in use when it is connected.
 */
@Injectable()
export class EntryReceiptService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    @Inject(ANCHORING_LOOP) private readonly loop: AnchoringLoop | null,
  ) {}

  async build(index: number): Promise<EntryReceiptDto> {
    const head = await this.loop?.getChainHead();
    const anchors = this.dataSource.getRepository(AnchorRecordEntity);
    const where: FindOptionsWhere<AnchorRecordEntity> = head
      ? { state: 'confirmed', chainId: head.chainId, genesisHash: head.genesisHash, contract: head.contract }
      : { state: 'confirmed' };
    const latest = await anchors.findOne({ where, order: { treeSize: 'DESC' } });
    const covered = latest !== null && Number(latest.treeSize) > index;
    const first = covered ? await anchors.findOne({ where: { ...where, treeSize: MoreThan(String(index)) }, order: { treeSize: 'ASC' } }) : null;
    const treeSize = covered ? Number(latest.treeSize) : (await this.ledger.getCheckpoint()).treeSize;
    const proof = await this.ledger.getInclusionProof(index, treeSize);
    if (covered && proof.rootHash !== latest.rootHash)
      throw new LedgerError('CORRUPT', `the log's root at size ${treeSize} is not the anchored root`);
    const [entry] = await this.ledger.getEntries(index, 1);
    return {
      ledgerIndex: index,
      leafHash: proof.leafHash,
      event: entry.event,
      inclusionProof: { treeSize, rootHash: proof.rootHash, proof: proof.proof },
      anchor: covered ? toAnchorResponse(latest, head) : null,
      firstAnchor: first ? toAnchorResponse(first, head) : null,
    };
  }
}
