/** What went wrong, for callers to branch on (never on the message text). */
export type MerkleErrorCode =
  /** An argument is out of range or malformed: a size or index that is not a safe integer >= 0, an index
   *  beyond the size, size1 > size2, a hash (leaf hash, root) that is not 32 bytes. */
  | 'INVALID_ARGUMENT'
  /** The proof is malformed: wrong number of hashes, or a proof hash that is not 32 bytes. */
  | 'BAD_PROOF'
  /** The proof is well formed but the root it leads to is not the expected one. */
  | 'ROOT_MISMATCH';

export interface MerkleErrorDetails {
  /** The argument at fault, e.g. `index`, `size2`, `leafHash`, `proof[2]`, `root1`. */
  field?: string;
  /** Lowercase hex of the root the caller expected (ROOT_MISMATCH). */
  expectedRoot?: string;
  /** Lowercase hex of the root the proof leads to (ROOT_MISMATCH). */
  calculatedRoot?: string;
  /** What was given and what was wanted, where a count or length is at fault. */
  got?: number;
  want?: number;
}

export class MerkleError extends Error {
  override readonly name = 'MerkleError';
  readonly field?: string;
  readonly expectedRoot?: string;
  readonly calculatedRoot?: string;
  readonly got?: number;
  readonly want?: number;

  constructor(readonly code: MerkleErrorCode, message: string, details: MerkleErrorDetails = {}) {
    super(message);
    this.field = details.field;
    this.expectedRoot = details.expectedRoot;
    this.calculatedRoot = details.calculatedRoot;
    this.got = details.got;
    this.want = details.want;
  }
}
