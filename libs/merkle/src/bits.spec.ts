import fc from 'fast-check';

import { bitIsSet, bitLength, popCount, shiftRight, trailingZeros, xor } from './bits';

const safe = fc.maxSafeNat();
const big = (x: number): bigint => BigInt(x);

describe('bit arithmetic on safe integers (checked against BigInt)', () => {
  it('bitLength, popCount, trailingZeros', () => {
    fc.assert(
      fc.property(safe, (x) => {
        expect(bitLength(x)).toBe(x === 0 ? 0 : big(x).toString(2).length);
        expect(popCount(x)).toBe([...big(x).toString(2)].filter((c) => c === '1').length);
        const tz = x === 0 ? 64 : big(x).toString(2).length - 1 - big(x).toString(2).lastIndexOf('1');
        expect(trailingZeros(x)).toBe(tz);
      }),
    );
    expect(bitLength(2 ** 53 - 1)).toBe(53);
    expect(trailingZeros(2 ** 52)).toBe(52);
  });

  it('xor, shiftRight, bitIsSet', () => {
    fc.assert(
      fc.property(safe, safe, fc.integer({ min: 0, max: 60 }), (a, b, n) => {
        expect(big(xor(a, b))).toBe(big(a) ^ big(b));
        expect(big(shiftRight(a, n))).toBe(big(a) >> big(n));
        expect(bitIsSet(a, n)).toBe(((big(a) >> big(n)) & 1n) === 1n);
      }),
    );
  });
});
