import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  CheckpointResponseDto,
  ConsistencyProofResponseDto,
  InclusionProofResponseDto,
  LedgerEntryResponseDto,
} from './ledger.dto';
import { LedgerService } from './ledger.service';

@ApiTags('ledger')
@Controller('v1/ledger')
export class LedgerController {
  constructor(private readonly ledgerService: LedgerService) {}

  @Get('checkpoint')
  @ApiOperation({ summary: 'The latest checkpoint: tree size and RFC 9162 root' })
  @ApiOkResponse({ type: CheckpointResponseDto })
  getCheckpoint(): Promise<CheckpointResponseDto> {
    return this.ledgerService.getCheckpoint();
  }

  @Get('entries')
  @ApiOperation({ summary: 'Entries [start, start + limit), each with its leaf hash and canonical JSON' })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [LedgerEntryResponseDto] })
  listEntries(@Query() query: Record<string, unknown>): Promise<LedgerEntryResponseDto[]> {
    return this.ledgerService.listEntries(query);
  }

  @Get('proofs/inclusion')
  @ApiOperation({ summary: 'Inclusion proof of entry `index` in the tree of size `treeSize` (default: the latest)' })
  @ApiQuery({ name: 'index', type: Number })
  @ApiQuery({ name: 'treeSize', required: false, type: Number })
  @ApiOkResponse({ type: InclusionProofResponseDto })
  getInclusionProof(@Query() query: Record<string, unknown>): Promise<InclusionProofResponseDto> {
    return this.ledgerService.getInclusionProof(query);
  }

  @Get('proofs/consistency')
  @ApiOperation({ summary: 'Consistency proof from tree size `from` to `to` (default: the latest)' })
  @ApiQuery({ name: 'from', type: Number })
  @ApiQuery({ name: 'to', required: false, type: Number })
  @ApiOkResponse({ type: ConsistencyProofResponseDto })
  getConsistencyProof(@Query() query: Record<string, unknown>): Promise<ConsistencyProofResponseDto> {
    return this.ledgerService.getConsistencyProof(query);
  }
}
