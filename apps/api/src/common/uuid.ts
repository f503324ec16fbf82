import { BadRequestException } from '@nestjs/common';
import { Matches } from 'class-validator';

/**
 * A UUID in its canonical form: 8-4-4-4-12 hex digits, any version. Every UUID the service takes (route
 * parameters, query parameters, body fields, the CLI's key ids) is checked against this one pattern, so a
 * value that reaches a `uuid` column is always one PostgreSQL accepts (never a 500).
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}

/** A body field that must be a UUID (class-validator), with a message naming it. */
export function IsUuid(field: string): PropertyDecorator {
  return Matches(UUID_PATTERN, { message: `${field} must be a UUID` });
}

/** An optional query parameter that must be a UUID: undefined when absent, otherwise a 400 naming it. */
export function parseUuidQueryParam(raw: unknown, name: string): string | undefined {
  if (raw === undefined) return undefined;
  if (!isUuid(raw)) throw new BadRequestException(`query parameter "${name}" must be a UUID`);
  return raw;
}
