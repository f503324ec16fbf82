/** Every way the unlearning engine refuses a request; callers branch on the code, not the text. */
export type UnlearningErrorCode =
  | 'INVALID_SAMPLE'
  | 'INVALID_CONFIG'
  | 'INVALID_REQUEST'
  | 'INSUFFICIENT_DATA'
  | 'DUPLICATE_SAMPLE'
  | 'UNKNOWN_SAMPLE'
  | 'PARSE_ERROR'
  | 'HASH_MISMATCH'
  | 'CHECKPOINT_MISSING'
  | 'CHECKPOINT_CORRUPT'
  | 'RUNTIME_ERROR';

/** One problem found while validating or parsing input; `line` is 1-based when the input had lines. */
export interface UnlearningIssue {
  line?: number;
  index?: number;
  externalId?: string;
  message: string;
}

export class UnlearningError extends Error {
  readonly code: UnlearningErrorCode;
  readonly issues: UnlearningIssue[];
  readonly expectedSha256?: string;
  readonly actualSha256?: string;

  constructor(
    code: UnlearningErrorCode,
    message: string,
    fields: { issues?: UnlearningIssue[]; expectedSha256?: string; actualSha256?: string } = {},
  ) {
    super(message);
    this.name = 'UnlearningError';
    this.code = code;
    this.issues = fields.issues ?? [];
    if (fields.expectedSha256 !== undefined) this.expectedSha256 = fields.expectedSha256;
    if (fields.actualSha256 !== undefined) this.actualSha256 = fields.actualSha256;
  }
}

/** Throws INVALID_SAMPLE / PARSE_ERROR style errors listing at most the first 20 issues in the message. */
export function throwIssues(code: UnlearningErrorCode, what: string, issues: UnlearningIssue[]): never {
  const shown = issues.slice(0, 20).map((i) => (i.line !== undefined ? `line ${i.line}: ` : i.index !== undefined ? `sample ${i.index}: ` : '') + i.message);
  const more = issues.length > 20 ? ` (and ${issues.length - 20} more)` : '';
  throw new UnlearningError(code, `${what}: ${shown.join('; ')}${more}`, { issues });
}
