import { UnlearningError } from '@lethe/unlearning';

/** Engine errors that a retry cannot fix (the request itself is wrong). */
const PERMANENT_CODES = new Set([
  'INVALID_SAMPLE',
  'INVALID_CONFIG',
  'INVALID_REQUEST',
  'INSUFFICIENT_DATA',
  'DUPLICATE_SAMPLE',
  'UNKNOWN_SAMPLE',
]);

/** Whether retrying the job that threw `error` would fail the same way. */
export function isPermanentJobError(error: unknown): boolean {
  return error instanceof UnlearningError && PERMANENT_CODES.has(error.code);
}

/**
 * The error as jobs, forget requests, pg-boss and the log keep it. The engine's issues about samples
 * (INVALID_SAMPLE, DUPLICATE_SAMPLE, ...) name externalIds and feature values: only their count and
 * positions are kept, never a value of a sample.
 */
export function describeJobError(error: unknown): string {
  if (error instanceof UnlearningError && error.issues.length > 0) {
    const where = error.issues
      .slice(0, 20)
      .map((i) => (i.line !== undefined ? `line ${i.line}` : i.index !== undefined ? `sample ${i.index}` : '?'))
      .join(', ');
    return `${error.code}: ${error.issues.length} sample(s) refused (${where}${error.issues.length > 20 ? ', …' : ''}); their values are not shown`;
  }
  return error instanceof Error ? error.message : String(error);
}
