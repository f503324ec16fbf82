import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LedgerError } from '@lethe/events';
import { SampleVault } from '@lethe/ledger';
import { MerkleTree, fromHex, hashLeaf, toHex } from '@lethe/merkle';
import { ModelStore } from '../models/model.store';
import { EntryReceiptService } from './entry-receipt.service';
import { CommittedReceiptDto, EntryReceiptDto, ForgetRequestedReceiptDto,
  ForgetStepReceiptDto, LearnedReceiptDto, SampleReceiptResponseDto } from './receipt.dto';

const COMMITMENT = /^[0-9a-f]{64}$/;

/**
 * The history of one sample commitment, with everything needed to check it against the log and the chain:
 * where it was committed, which model versions learned it (the BATCH_LEARNED entries whose batch holds it,
 * with its proof in each batch root), where its forgetting was requested, which versions were unlearned,
 * retired and which checkpoints deleted for those requests.
 */
@Injectable()
export class ReceiptService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sampleVault: SampleVault,
    private readonly entryReceiptService: EntryReceiptService,
    private readonly store: ModelStore,
  ) {}

  async get(commitment: string): Promise<SampleReceiptResponseDto> {
    if (!COMMITMENT.test(commitment)) throw new BadRequestException('commitment must be 32 bytes of lowercase hex (64 characters)');
    const sample = await this.sampleVault.findCommitment(commitment);
    if (!sample) throw new NotFoundException(`no committed sample has commitment ${commitment}`);
    const requests: { id: string; state: string; ledger_index: string; deadline: Date | null; steps: [string, string | null][] }[] = await this.dataSource.query(
      `SELECT r.id, r.state, r.ledger_index, r.deadline,
              json_build_array(json_build_array('suspended', r.suspend_ledger_index), json_build_array('restored', r.restore_ledger_index),
                               json_build_array('shredded', r.shred_ledger_index)) AS steps
         FROM forget_request_samples s JOIN forget_requests r ON r.id = s.request_id
        WHERE s.commitment = $1 AND r.ledger_index IS NOT NULL ORDER BY r.ledger_index`,
      [commitment],
    );
    const forgetRequests: ForgetRequestedReceiptDto[] = [];
    for (const r of requests) {
      const steps: ForgetStepReceiptDto[] = [];
      for (const [step, index] of r.steps)
        if (index !== null) steps.push({ step: step as ForgetStepReceiptDto['step'], ...(await this.entryReceiptService.build(Number(index))) });
      steps.sort((a, b) => a.ledgerIndex - b.ledgerIndex);
      forgetRequests.push({
        requestId: r.id,
        state: r.state,
        ...(await this.entryReceiptService.build(Number(r.ledger_index))),
        ...(r.deadline !== null ? { deadline: new Date(r.deadline).toISOString(), steps } : {}),
      });
    }
    const requestIds = requests.map((r) => r.id);
    return {
      commitment,
      datasetId: sample.datasetId,
      forgotten: sample.forgotten,
      committed: await this.committed(commitment, sample.ledgerIndex),
      forgetRequests,
      learnedIn: await this.learnedIn(commitment, sample.datasetId),
      unlearnedIn: await this.entries(
        // Per model, the first version that reflects one of the requests: the one that no longer learned it.
        `SELECT DISTINCT ON (model_id) unlearn_ledger_index AS idx FROM model_versions
          WHERE reflects_forget_requests && $1::uuid[] AND unlearn_ledger_index IS NOT NULL ORDER BY model_id, version`,
        requestIds,
      ),
      retiredVersions: await this.entries(
        // Retired for one of the requests, or a version that learned the commitment retired for whichever request
        // (one retired earlier for another subject's request is not retired again, and is retired all the same).
        `SELECT retire_ledger_index AS idx FROM model_versions WHERE retired_by && $1::uuid[] AND retire_ledger_index IS NOT NULL
         UNION
         SELECT v.retire_ledger_index FROM sample_commitments s
           JOIN model_version_samples m ON m.sample_id = s.id
           JOIN model_versions v ON v.model_id = m.model_id AND v.version = m.version
          WHERE s.commitment = $2 AND v.retire_ledger_index IS NOT NULL`,
        requestIds,
        [commitment],
      ),
      checkpointsDeleted: await this.entries(
        `SELECT DISTINCT ledger_index AS idx FROM checkpoint_deletions WHERE forget_request_ids && $1::uuid[] AND ledger_index IS NOT NULL`,
        requestIds,
      ),
    };
  }

  /** The SAMPLES_COMMITTED entry, and the proof of the commitment in its commitmentsRoot, rebuilt from the batch. */
  private async committed(commitment: string, index: number): Promise<CommittedReceiptDto> {
    const receipt = await this.entryReceiptService.build(index);
    const event = JSON.parse(receipt.event) as { type: string; commitmentsRoot: string; count: number };
    if (event.type !== 'SAMPLES_COMMITTED') throw new LedgerError('CORRUPT', `entry ${index} is not a SAMPLES_COMMITTED entry`);
    const { position, proof } = proveInBatch(commitment, await this.sampleVault.getBatchCommitments(index), event.commitmentsRoot, event.count, index);
    return { ...receipt, commitmentsRoot: event.commitmentsRoot, count: event.count, position, commitmentProof: proof };
  }

  /**
   * The BATCH_LEARNED entries whose batch holds the commitment, oldest first, each with its proof in the batch
   * root. A version made by forgetting is served before its batches' members are written: the receipt waits
   * for those of the dataset's models (or writes them, when the pass that owed them stopped) so none is missed.
   */
  private async learnedIn(commitment: string, datasetId: string): Promise<LearnedReceiptDto[]> {
    await this.store.settleBatchMembers(datasetId);
    const rows: { ledger_index: string }[] = await this.dataSource.query(
      `SELECT ledger_index FROM batch_commitments WHERE commitment = $1 ORDER BY ledger_index`,
      [commitment],
    );
    const out: LearnedReceiptDto[] = [];
    for (const { ledger_index } of rows) {
      const index = Number(ledger_index);
      const receipt = await this.entryReceiptService.build(index);
      const event = JSON.parse(receipt.event) as { type: string; batchRoot: string; count: number };
      if (event.type !== 'BATCH_LEARNED') throw new LedgerError('CORRUPT', `entry ${index} is not a BATCH_LEARNED entry`);
      const batch: { commitment: string }[] = await this.dataSource.query(
        `SELECT commitment FROM batch_commitments WHERE ledger_index = $1 ORDER BY position`,
        [ledger_index],
      );
      const { position, proof } = proveInBatch(commitment, batch.map((b) => b.commitment), event.batchRoot, event.count, index);
      out.push({ ...receipt, position, batchProof: proof });
    }
    return out;
  }

  /** Entry receipts of the indices `sql` selects (as `idx`, given the request ids and `more` parameters), in log order. */
  private async entries(sql: string, requestIds: string[], more: unknown[] = []): Promise<EntryReceiptDto[]> {
    if (requestIds.length === 0) return [];
    const rows: { idx: string }[] = await this.dataSource.query(sql, [requestIds, ...more]);
    const indices = rows.map((r) => Number(r.idx)).sort((a, b) => a - b);
    const out: EntryReceiptDto[] = [];
    for (const index of indices) out.push(await this.entryReceiptService.build(index));
    return out;
  }
}

/** The commitment's position and inclusion proof in the batch (its commitments in order), checked against the entry's root and count. */
function proveInBatch(commitment: string, batch: string[], root: string, count: number, index: number): { position: number; proof: string[] } {
  const tree = MerkleTree.fromLeafHashes(batch.map((c) => hashLeaf(fromHex(c, 'commitment'))));
  const position = batch.indexOf(commitment);
  if (batch.length !== count || toHex(tree.root()) !== root || position < 0)
    throw new LedgerError('CORRUPT', `the stored commitments of the batch at index ${index} do not rebuild its root`);
  return { position, proof: tree.inclusionProof(position).map(toHex) };
}
