import { ValueTransformer } from 'typeorm';
import { LedgerError } from '@lethe/events';

/** PostgreSQL bigint arrives as a string; sizes and indices are checked safe integers in TypeScript. */
export function toSafeInteger(value: string | number | bigint, what: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new LedgerError('CORRUPT', `${what} ${String(value)} is not a safe integer`);
  return n;
}

export const bigintTransformer: ValueTransformer = {
  to: (value: number | null | undefined) => (value === null || value === undefined ? value : String(value)),
  from: (value: string | null) => (value === null ? value : toSafeInteger(value, 'bigint column')),
};
