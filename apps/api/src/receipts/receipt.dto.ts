import { ApiProperty } from '@nestjs/swagger';
import { AnchorResponseDto } from '../anchoring/anchors.dto';

export class ReceiptInclusionProofDto {
  @ApiProperty({ description: 'the tree size the proof is for: the latest anchored size when an anchor covers the entry, else the latest size' })
  treeSize!: number;
  @ApiProperty({ description: 'root of that tree (equal to the anchor rootHash when anchored)' }) rootHash!: string;
  @ApiProperty({ type: [String], description: 'RFC 9162 inclusion proof of leafHash at ledgerIndex' }) proof!: string[];
}

/** Where one log entry is, and how to check it against the log and the chain. */
export class EntryReceiptDto {
  @ApiProperty() ledgerIndex!: number;
  @ApiProperty({ description: 'SHA-256(0x00 || event)' }) leafHash!: string;
  @ApiProperty({ description: 'the entry as RFC 8785 canonical JSON: the bytes that were hashed' }) event!: string;
  @ApiProperty({ type: ReceiptInclusionProofDto }) inclusionProof!: ReceiptInclusionProofDto;
  @ApiProperty({ type: AnchorResponseDto, nullable: true, description: 'the anchor at inclusionProof.treeSize (the latest one), or null when no anchor covers the entry yet' })
  anchor!: AnchorResponseDto | null;
  @ApiProperty({ type: AnchorResponseDto, nullable: true, description: 'the first confirmed anchor that covers the entry (treeSize > ledgerIndex)' })
  firstAnchor!: AnchorResponseDto | null;
}

export class CommittedReceiptDto extends EntryReceiptDto {
  @ApiProperty({ description: "the SAMPLES_COMMITTED entry's commitmentsRoot" }) commitmentsRoot!: string;
  @ApiProperty({ description: 'samples in that batch' }) count!: number;
  @ApiProperty({ description: "the sample's leaf position in the batch" }) position!: number;
  @ApiProperty({ type: [String], description: 'RFC 9162 inclusion proof of SHA-256(0x00 || commitment bytes) at position in the tree of count leaves with root commitmentsRoot' })
  commitmentProof!: string[];
}

export class LearnedReceiptDto extends EntryReceiptDto {
  @ApiProperty({ description: "the sample's leaf position in the BATCH_LEARNED entry's batch" }) position!: number;
  @ApiProperty({
    type: [String],
    description: "RFC 9162 inclusion proof of SHA-256(0x00 || commitment bytes) at position in the tree of the entry's count leaves with root batchRoot",
  })
  batchProof!: string[];
}

/** A logged step of a suspended forget request after FORGET_REQUESTED, with its entry's receipt. */
export class ForgetStepReceiptDto extends EntryReceiptDto {
  @ApiProperty({ enum: ['suspended', 'restored', 'shredded'] }) step!: 'suspended' | 'restored' | 'shredded';
}

export class ForgetRequestedReceiptDto extends EntryReceiptDto {
  @ApiProperty({ format: 'uuid' }) requestId!: string;
  @ApiProperty({ enum: ['received', 'unlearning', 'completed', 'failed', 'suspended', 'restoring', 'restored'] }) state!: string;
  @ApiProperty({ required: false, description: 'mode suspend: when the data keys are destroyed unless the request is restored first' }) deadline?: string;
  @ApiProperty({ required: false, type: [ForgetStepReceiptDto], description: 'mode suspend: FORGET_SUSPENDED, FORGET_RESTORED, FORGET_SHREDDED, in log order' })
  steps?: ForgetStepReceiptDto[];
}

export class SampleReceiptResponseDto {
  @ApiProperty() commitment!: string;
  @ApiProperty({ format: 'uuid' }) datasetId!: string;
  @ApiProperty({ description: "true once the sample's data and salt are destroyed" }) forgotten!: boolean;
  @ApiProperty({ type: CommittedReceiptDto }) committed!: CommittedReceiptDto;
  @ApiProperty({ type: [ForgetRequestedReceiptDto], description: 'FORGET_REQUESTED entries naming the commitment, oldest first' })
  forgetRequests!: ForgetRequestedReceiptDto[];
  @ApiProperty({
    type: [LearnedReceiptDto],
    description: 'BATCH_LEARNED entries whose batch holds the commitment (the model versions that learned it), with its proof in each batch root',
  })
  learnedIn!: LearnedReceiptDto[];
  @ApiProperty({ type: [EntryReceiptDto], description: 'per model, the first UNLEARN_COMPLETED entry that serves one of its forget requests' })
  unlearnedIn!: EntryReceiptDto[];
  @ApiProperty({ type: [EntryReceiptDto], description: 'VERSION_RETIRED entries naming one of its forget requests, and those of versions that learned it retired for another request: the versions withdrawn' })
  retiredVersions!: EntryReceiptDto[];
  @ApiProperty({ type: [EntryReceiptDto], description: 'CHECKPOINTS_DELETED entries naming one of its forget requests' })
  checkpointsDeleted!: EntryReceiptDto[];
}
