import { createHash, randomBytes } from 'node:crypto';
import { digestLatin1 as browserDigest } from './digest.browser';
import { digestLatin1 as nodeDigest } from './digest';

const hex = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('hex');

describe('SHA-256 for browsers (digest.browser.ts)', () => {
  it('gives the FIPS 180-4 example digests', () => {
    expect(hex(browserDigest(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(browserDigest(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(browserDigest(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('equals node:crypto on every length around the block and padding boundaries', () => {
    for (let length = 0; length <= 200; length++) {
      const data = randomBytes(length);
      expect(hex(browserDigest(data))).toBe(hex(nodeDigest(data)));
    }
  });

  it('equals node:crypto on large inputs and on views into larger buffers', () => {
    const big = randomBytes(1_000_003);
    expect(hex(browserDigest(big))).toBe(createHash('sha256').update(big).digest('hex'));
    const view = big.subarray(17, 17 + 65);
    expect(hex(browserDigest(new Uint8Array(view.buffer, view.byteOffset, view.length)))).toBe(hex(nodeDigest(view)));
    // A small input after a large one: nothing of one call may leak into the next.
    expect(hex(browserDigest(new Uint8Array([1, 2, 3])))).toBe(hex(nodeDigest(new Uint8Array([1, 2, 3]))));
  });
});
