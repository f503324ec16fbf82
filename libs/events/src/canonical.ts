import canonicalize from 'canonicalize';
import { hashLeaf } from '@lethe/merkle';
import { LedgerError } from './errors';
import { LedgerEvent, validateEvent } from './events';

/**
 * The RFC 8785 (JCS) encoding of an event: the bytes that become the Merkle leaf. Any auditor can
 * re-hash an entry from its JSON with any JCS implementation.
 */
export function canonicalizeEvent(event: LedgerEvent): string {
  validateEvent(event);
  const text = canonicalize(event);
  if (text === undefined) throw new LedgerError('INVALID_EVENT', 'event cannot be canonicalized');
  return text;
}

export function encodeEvent(event: LedgerEvent): Uint8Array {
  return new TextEncoder().encode(canonicalizeEvent(event));
}

/** Leaf hash of an entry: SHA-256(0x00 || canonical JSON). */
export function hashEvent(event: LedgerEvent): Uint8Array {
  return hashLeaf(encodeEvent(event));
}

/** Parses stored canonical JSON back into an event, checking that it is canonical. */
export function decodeEvent(text: string): LedgerEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LedgerError('CORRUPT', 'stored event is not JSON');
  }
  validateEvent(parsed);
  if (canonicalize(parsed) !== text) throw new LedgerError('CORRUPT', 'stored event is not in canonical form');
  return parsed;
}
