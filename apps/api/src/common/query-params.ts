import { BadRequestException } from '@nestjs/common';

export interface IntegerParamOptions {
  /** Value when the parameter is absent; without it the parameter is required. */
  default?: number;
  min?: number;
  max?: number;
}

/**
 * Parses a query parameter that must be a non-negative decimal integer. A client's mistake is a 400
 * naming the parameter, never a 500 and never a silent coercion ("1e3", "0x10", " 5", "5.0" are refused).
 */
export function parseIntegerParam(raw: unknown, name: string, options: IntegerParamOptions = {}): number {
  if (raw === undefined || raw === '') {
    if (options.default !== undefined) return options.default;
    throw new BadRequestException(`query parameter "${name}" is required`);
  }
  if (typeof raw !== 'string') throw new BadRequestException(`query parameter "${name}" must be given once`);
  if (!/^\d{1,16}$/.test(raw)) throw new BadRequestException(`query parameter "${name}" must be a non-negative integer, got "${truncate(raw)}"`);
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new BadRequestException(`query parameter "${name}" is too large`);
  const min = options.min ?? 0;
  if (value < min) throw new BadRequestException(`query parameter "${name}" must be at least ${min}, got ${value}`);
  if (options.max !== undefined && value > options.max)
    throw new BadRequestException(`query parameter "${name}" must be at most ${options.max}, got ${value}`);
  return value;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
