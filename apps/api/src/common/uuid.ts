import { createHash } from 'node:crypto';
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

/**
 * A name-based UUID (version 5's layout, SHA-256 instead of SHA-1) of the parts: the same parts always give
 * the same id, so sending a job under it twice is harmless.
 */
export function uuidOf(...parts: string[]): string {
  const bytes = createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
