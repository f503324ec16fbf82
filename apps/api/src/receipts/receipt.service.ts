import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LedgerError } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { MerkleTree, fromHex, hashLeaf, toHex } from '@lethe/merkle';
import { EntryReceiptService } from './entry-receipt.service';
import { CommittedReceiptDto, ForgetRequestedReceiptDto, SampleReceiptResponseDto } from './receipt.dto';

const COMMITMENT = /^[0-9a-f]{64}$/;

/** The history of one sample commitment, with everything needed to check it against the log and the chain. */
@Injectable()
export class ReceiptService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sampleVault: SampleVault,
    private readonly entryReceiptService: EntryReceiptService,
  ) {}

  async get(commitment: string): Promise<SampleReceiptResponseDto> {
    if (!COMMITMENT.test(commitment)) throw new BadRequestException('commitment must be 32 bytes of lowercase hex (64 characters)');
    const [sample]: { dataset_id: string; ledger_index: string; forgotten: boolean }[] = await this.dataSource.query(
      `SELECT dataset_id, ledger_index, shredded_at IS NOT NULL AS forgotten FROM samples WHERE commitment = $1 AND ledger_index IS NOT NULL`,
      [commitment],
    );
    if (!sample) throw new NotFoundException(`no committed sample has commitment ${commitment}`);
    const requests: { id: string; state: string; ledger_index: string }[] = await this.dataSource.query(
      `SELECT r.id, r.state, r.ledger_index FROM forget_request_samples s JOIN forget_requests r ON r.id = s.request_id
        WHERE s.commitment = $1 AND r.ledger_index IS NOT NULL ORDER BY r.ledger_index`,
      [commitment],
    );
    const forgetRequests: ForgetRequestedReceiptDto[] = [];
    for (const r of requests)
      forgetRequests.push({ requestId: r.id, state: r.state, ...(await this.entryReceiptService.build(Number(r.ledger_index))) });
    return {
      commitment,
      datasetId: sample.dataset_id,
      forgotten: sample.forgotten,
      committed: await this.committed(commitment, Number(sample.ledger_index)),
      forgetRequests,
    };
  }

  /** The SAMPLES_COMMITTED entry, and the proof of the commitment in its commitmentsRoot, rebuilt from the batch. */
  private async committed(commitment: string, index: number): Promise<CommittedReceiptDto> {
    const receipt = await this.entryReceiptService.build(index);
    const event = JSON.parse(receipt.event) as { type: string; commitmentsRoot: string; count: number };
    const batch = await this.sampleVault.getBatchCommitments(index);
    const tree = MerkleTree.fromLeafHashes(batch.map((c) => hashLeaf(fromHex(c, 'commitment'))));
    const position = batch.indexOf(commitment);
    if (event.type !== 'SAMPLES_COMMITTED' || batch.length !== event.count || toHex(tree.root()) !== event.commitmentsRoot || position < 0)
      throw new LedgerError('CORRUPT', `the stored commitments of the batch at index ${index} do not rebuild its commitmentsRoot`);
    return {
      ...receipt,
      commitmentsRoot: event.commitmentsRoot,
      count: event.count,
      position,
      commitmentProof: tree.inclusionProof(position).map(toHex),
    };
  }
}
