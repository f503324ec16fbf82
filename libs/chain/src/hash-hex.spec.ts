import { fromBytes32, toBytes32, toUint64 } from './hash-hex';

describe('hash conversions at the contract boundary', () => {
  it('takes bytes or hex (either case, optional 0x) and gives the ABI 0x-lowercase form', () => {
    const bytes = new Uint8Array(32).map((_, i) => i * 7);
    const hex = Buffer.from(bytes).toString('hex');
    expect(toBytes32(bytes, 'h')).toBe('0x' + hex);
    expect(toBytes32(hex.toUpperCase(), 'h')).toBe('0x' + hex);
    expect(toBytes32('0x' + hex, 'h')).toBe('0x' + hex);
    expect(fromBytes32('0x' + hex.toUpperCase())).toBe(hex);
  });

  it('refuses hashes that are not 32 bytes, naming the argument', () => {
    expect(() => toBytes32(new Uint8Array(31), 'proof[2]')).toThrow('proof[2] has 31 bytes, want 32');
    expect(() => toBytes32('ab'.repeat(31), 'newRoot')).toThrow(/newRoot is not 32 bytes of hex/);
    expect(() => toBytes32('zz'.repeat(32), 'newRoot')).toThrow(/newRoot/);
  });

  it('refuses sizes that are not safe integers >= 0', () => {
    expect(toUint64(2 ** 53 - 1, 'size')).toBe(2n ** 53n - 1n);
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) expect(() => toUint64(bad, 'size')).toThrow(/size .* is not a safe integer/);
  });
});
