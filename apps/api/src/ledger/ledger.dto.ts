import { ApiProperty } from '@nestjs/swagger';
import { ConsistencyProof, InclusionProof, LedgerEntry } from '@lethe/ledger';

export class CheckpointResponseDto {
  @ApiProperty({ example: 42 }) treeSize!: number;
  @ApiProperty({ description: 'RFC 9162 root, lowercase hex' }) rootHash!: string;
}

export class LedgerEntryResponseDto {
  @ApiProperty() index!: number;
  @ApiProperty({ description: 'SHA-256(0x00 || event), lowercase hex' }) leafHash!: string;
  @ApiProperty({ description: 'the event as RFC 8785 canonical JSON: exactly the bytes that were hashed' }) event!: string;
}

export class InclusionProofResponseDto {
  @ApiProperty() index!: number;
  @ApiProperty() treeSize!: number;
  @ApiProperty() leafHash!: string;
  @ApiProperty() rootHash!: string;
  @ApiProperty({ type: [String] }) proof!: string[];
}

export class ConsistencyProofResponseDto {
  @ApiProperty() from!: number;
  @ApiProperty() to!: number;
  @ApiProperty() fromRoot!: string;
  @ApiProperty() toRoot!: string;
  @ApiProperty({ type: [String] }) proof!: string[];
}

export function toLedgerEntryResponse(entry: LedgerEntry): LedgerEntryResponseDto {
  return { index: entry.index, leafHash: entry.leafHash, event: entry.event };
}

export function toInclusionProofResponse(proof: InclusionProof): InclusionProofResponseDto {
  return { index: proof.index, treeSize: proof.treeSize, leafHash: proof.leafHash, rootHash: proof.rootHash, proof: proof.proof };
}

export function toConsistencyProofResponse(proof: ConsistencyProof): ConsistencyProofResponseDto {
  return { from: proof.from, to: proof.to, fromRoot: proof.fromRoot, toRoot: proof.toRoot, proof: proof.proof };
}
