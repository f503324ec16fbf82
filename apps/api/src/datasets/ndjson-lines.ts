/** One line of an NDJSON body: its 1-based number and text, or why it was skipped. */
export type NdjsonLine = { line: number; text: string; error?: undefined } | { line: number; text?: undefined; error: string };

/**
 * Splits a byte stream into lines (LF or CRLF), one at a time, so a body of any size streams through in
 * bounded memory. node:readline would do it but has no line length limit: one endless line would be
 * buffered whole. A line longer than `maxLineBytes` is reported and skipped up to its end. Blank lines are
 * skipped (but counted).
 */
export async function* splitNdjsonLines(stream: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<NdjsonLine> {
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  let line = 0;
  const finish = function* (): Generator<NdjsonLine> {
    line++;
    if (tooLong) {
      yield { line, error: `line is longer than ${maxLineBytes} bytes` };
    } else {
      let text = Buffer.concat(parts, length).toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (text.trim() !== '') yield { line, text };
    }
    parts = [];
    length = 0;
    tooLong = false;
  };
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (;;) {
      const end = buffer.indexOf(0x0a, start);
      const piece = buffer.subarray(start, end === -1 ? buffer.length : end);
      if (!tooLong) {
        if (length + piece.length > maxLineBytes) {
          tooLong = true;
          parts = [];
          length = 0;
        } else if (piece.length > 0) {
          parts.push(Buffer.from(piece)); // a copy: the stream may reuse its buffer
          length += piece.length;
        }
      }
      if (end === -1) break;
      yield* finish();
      start = end + 1;
    }
  }
  if (length > 0 || tooLong) yield* finish();
}
