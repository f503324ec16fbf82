// Re-hashing an entry from its canonical JSON, as any auditor can: leaf = SHA-256(0x00 || UTF-8 of the JSON).
import { hashLeaf, toHex } from '@lethe/merkle';
// @lethe/events is browser-safe; checking with its validateEvent keeps the verifier's schema the ledger's
// own instead of a copy that could drift.
import { validateEvent, type LedgerEvent } from '@lethe/events';
import { isCanonicalJson } from './canonical-check';
import type { VerificationFailure } from './errors';
import type { ServerEntry } from './server-data';

export interface RehashedEntry {
  index: number;
  /** Recomputed from the event bytes, whatever the server claimed. */
  leafHash: Uint8Array;
  /** The parsed event, or null when the JSON does not parse or is not a valid event. */
  event: LedgerEvent | null;
  /** What is wrong with the entry (BAD_ENTRY), if anything. */
  failure?: VerificationFailure;
}

const encoder = new TextEncoder();

/**
 * Re-hashes an entry and checks it: the JSON parses, is a valid event, is canonical (RFC 8785, re-encoded
 * by isCanonicalJson, which falls back on the `canonicalize` package), and hashes to the leaf hash the server sent.
 */
export function rehashEntry(entry: ServerEntry): RehashedEntry {
  const { index } = entry;
  const leafHash = hashLeaf(encoder.encode(entry.event));
  const bad = (message: string, event: LedgerEvent | null = null): RehashedEntry => ({
    index,
    leafHash,
    event,
    failure: { code: 'BAD_ENTRY', message: `entry ${index}: ${message}`, index },
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.event);
  } catch {
    return bad('the event is not JSON');
  }
  try {
    validateEvent(parsed);
  } catch (err) {
    return bad(`not a valid event: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isCanonicalJson(parsed, entry.event)) return bad('the event JSON is not canonical (RFC 8785)', parsed);
  const recomputed = toHex(leafHash);
  if (recomputed !== entry.leafHash) {
    return bad(`the event hashes to ${recomputed}, the server says ${entry.leafHash}`, parsed);
  }
  return { index, leafHash, event: parsed };
}
