import { Injectable } from '@nestjs/common';
import { Ledger, MAX_ENTRIES_PER_READ } from '@lethe/ledger';
import { parseIntegerParam } from '../common/query-params';
import {
  CheckpointResponseDto,
  ConsistencyProofResponseDto,
  InclusionProofResponseDto,
  LedgerEntryResponseDto,
  toConsistencyProofResponse,
  toInclusionProofResponse,
  toLedgerEntryResponse,
} from './ledger.dto';

/** Read-only views of the log for auditors: entries, checkpoint and proofs. */
@Injectable()
export class LedgerService {
  constructor(private readonly ledger: Ledger) {}

  getCheckpoint(): Promise<CheckpointResponseDto> {
    return this.ledger.getCheckpoint();
  }

  async listEntries(query: { start?: unknown; limit?: unknown }): Promise<LedgerEntryResponseDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: MAX_ENTRIES_PER_READ });
    return (await this.ledger.getEntries(start, limit)).map(toLedgerEntryResponse);
  }

  async getInclusionProof(query: { index?: unknown; treeSize?: unknown }): Promise<InclusionProofResponseDto> {
    const index = parseIntegerParam(query.index, 'index');
    const treeSize =
      query.treeSize === undefined ? (await this.ledger.getCheckpoint()).treeSize : parseIntegerParam(query.treeSize, 'treeSize', { min: 1 });
    return toInclusionProofResponse(await this.ledger.getInclusionProof(index, treeSize));
  }

  async getConsistencyProof(query: { from?: unknown; to?: unknown }): Promise<ConsistencyProofResponseDto> {
    const from = parseIntegerParam(query.from, 'from', { min: 1 });
    const to = query.to === undefined ? (await this.ledger.getCheckpoint()).treeSize : parseIntegerParam(query.to, 'to', { min: 1 });
    return toConsistencyProofResponse(await this.ledger.getConsistencyProof(from, to));
  }
}
