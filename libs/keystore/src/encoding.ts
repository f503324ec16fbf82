/**
 * An injective encoding of a sequence of strings or byte strings: each part as its 4-byte big-endian
 * length, then its bytes (strings as UTF-8). Two different sequences never encode to the same bytes, so
 * `['ab', 'c']` and `['a', 'bc']` bind different things (a plain concatenation would not tell them apart).
 */
export function encodeParts(parts: readonly (string | Uint8Array)[]): Buffer {
  const buffers = parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part)));
  const out = Buffer.alloc(buffers.reduce((sum, b) => sum + 4 + b.length, 0));
  let offset = 0;
  for (const b of buffers) {
    out.writeUInt32BE(b.length, offset);
    b.copy(out, offset + 4);
    offset += 4 + b.length;
  }
  return out;
}
