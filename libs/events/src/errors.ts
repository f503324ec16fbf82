/** What went wrong, for callers to branch on (the HTTP layer maps these to status codes). */
export type LedgerErrorCode =
  | 'INVALID_ARGUMENT' // a parameter is malformed (not an integer, negative, from > to, ...)
  | 'OUT_OF_RANGE' // a well-formed index or size the log does not have (yet)
  | 'INVALID_EVENT' // an event that does not match its type's schema
  | 'CORRUPT' // stored data contradicts itself (found by fsck or a read)
  | 'UNAVAILABLE'; // the database cannot be reached

export class LedgerError extends Error {
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
    /** The parameter or field the message is about, when there is one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'LedgerError';
  }
}
