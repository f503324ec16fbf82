// Whether a JSON text is the RFC 8785 canonical encoding of the value it parses to, fast: the verifier asks
// it of every entry of the log. RFC 8785 writes numbers and strings as ECMAScript's JSON.stringify does and
// sorts object keys by UTF-16 code units, so a text equal to JSON.stringify of its own parse, whose objects
// all have their keys in that order, is canonical. JSON.stringify lists integer-like keys ("9", "10") in
// numeric order, not code-unit order: texts with such keys (or any other miss) take the exact path, the
// `canonicalize` package itself. canonical-check.spec.ts compares both on random JSON.
import canonicalize from 'canonicalize';

/** True when `text` is exactly the RFC 8785 encoding of `parsed` (which must be JSON.parse(text)). */
export function isCanonicalJson(parsed: unknown, text: string): boolean {
  if (JSON.stringify(parsed) === text && keysSorted(parsed)) return true;
  return canonicalize(parsed) === text;
}

function keysSorted(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) return false;
  return keys.every((k) => keysSorted((value as Record<string, unknown>)[k]));
}
