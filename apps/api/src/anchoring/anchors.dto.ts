import { ApiProperty } from '@nestjs/swagger';
import { AnchorRecordEntity } from './anchor-record.entity';
import type { ChainHead } from '@lethe/chain';

export class AnchorResponseDto {
  @ApiProperty({ example: '31337' }) chainId!: string;
  @ApiProperty({ description: 'AuditAnchor address, lowercase 0x hex' }) contract!: string;
  @ApiProperty() txHash!: string;
  @ApiProperty() blockNumber!: number;
  @ApiProperty() treeSize!: number;
  @ApiProperty() rootHash!: string;
  @ApiProperty({ nullable: true, description: 'blocks on top of and including the anchoring block; null when that chain is not the one in use' })
  confirmations!: number | null;
  @ApiProperty({ description: 'index of the ANCHORED entry that records it in the log' }) ledgerIndex!: number;
}

export function toAnchorResponse(record: AnchorRecordEntity, head?: ChainHead): AnchorResponseDto {
  const blockNumber = Number(record.blockNumber);
  const current = head && head.chainId === record.chainId && head.genesisHash === record.genesisHash && head.contract === record.contract;
  return {
    chainId: record.chainId,
    contract: record.contract,
    txHash: record.txHash!,
    blockNumber,
    treeSize: Number(record.treeSize),
    rootHash: record.rootHash,
    confirmations: current ? Math.max(0, head.blockNumber - blockNumber + 1) : null,
    ledgerIndex: Number(record.ledgerIndex),
  };
}
