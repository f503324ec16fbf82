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

export function describeJobError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
