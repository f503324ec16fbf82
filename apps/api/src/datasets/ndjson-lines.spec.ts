import { NdjsonLine, splitNdjsonLines } from './ndjson-lines';

async function split(chunks: (string | Buffer)[], maxLineBytes = 100): Promise<NdjsonLine[]> {
  const out: NdjsonLine[] = [];
  for await (const line of splitNdjsonLines(
    (async function* () {
      yield* chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
    })(),
    maxLineBytes,
  ))
    out.push(line);
  return out;
}

/** The text cut into pieces at random byte offsets (also inside multi-byte characters). */
function cut(text: string, seed: number): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  let x = seed;
  for (let at = 0; at < bytes.length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (x % 7);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

describe('splitNdjsonLines', () => {
  it('numbers lines from 1, skips blank ones, takes CRLF and a last line without a newline', async () => {
    expect(await split(['a\r\n\nb\n', '  \nc'])).toEqual([
      { line: 1, text: 'a' },
      { line: 3, text: 'b' },
      { line: 5, text: 'c' },
    ]);
  });

  it('gives the same lines however the bytes are cut, multi-byte characters included', async () => {
    const text = '{"a":"é☃"}\n{"b":"𝄞"}\r\n\n{"c":1}';
    const whole = await split([text]);
    for (let seed = 1; seed < 50; seed++) expect(await split(cut(text, seed))).toEqual(whole);
    expect(whole.map((l) => l.text)).toEqual(['{"a":"é☃"}', '{"b":"𝄞"}', '{"c":1}']);
  });

  it('reports a line longer than the limit, skips to its end, and goes on', async () => {
    const long = 'x'.repeat(150);
    expect(await split(['ok\n', long.slice(0, 70), long.slice(70), '\nnext\n', long])).toEqual([
      { line: 1, text: 'ok' },
      { line: 2, error: 'line is longer than 100 bytes' },
      { line: 3, text: 'next' },
      { line: 4, error: 'line is longer than 100 bytes' },
    ]);
    expect(await split(['x'.repeat(100)])).toEqual([{ line: 1, text: 'x'.repeat(100) }]);
  });
});
