import { erfc, logAdd, logErfc, logNormalCdf, logSub, normalCdf } from './special';

describe('special functions', () => {
  // erfc to 16 digits (tables of Abramowitz & Stegun 7.1 extended; mpmath gives the same digits).
  it.each([
    [0, 1],
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [3, 2.209049699858544e-5],
    [5, 1.5374597944280349e-12],
    [10, 2.0884875837625447e-45],
  ])('erfc(%p) is right to 1e-14 relative', (x, want) => {
    expect(Math.abs(erfc(x) - want)).toBeLessThanOrEqual(1e-14 * want);
  });

  it('log erfc keeps its precision where erfc underflows (Mills ratio asymptotics)', () => {
    for (const x of [30, 100, 1000]) {
      // erfc(x) = e^(-x²)/(x√π) (1 - 1/(2x²) + 3/(4x⁴) - ...)
      const series = -x * x - Math.log(x * Math.sqrt(Math.PI)) + Math.log(1 - 1 / (2 * x * x) + 3 / (4 * x ** 4) - 15 / (8 * x ** 6));
      expect(Math.abs(logErfc(x) - series)).toBeLessThan(1e-12 * Math.abs(series));
    }
  });

  it('is continuous where it switches from the series to the continued fraction, and erfc(-x) = 2 - erfc(x)', () => {
    expect(Math.abs(logErfc(2 - 1e-12) - logErfc(2))).toBeLessThan(1e-11);
    for (const x of [0.1, 1, 2.5, 6]) expect(erfc(-x)).toBeCloseTo(2 - erfc(x), 15);
  });

  it('normal CDF: symmetric, right in the lower tail', () => {
    expect(normalCdf(0)).toBe(0.5);
    for (const x of [0.3, 1.7, 4]) expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 15);
    // Φ(-10) = 7.619853024160527e-24
    expect(Math.abs(normalCdf(-10) / 7.619853024160527e-24 - 1)).toBeLessThan(1e-13);
    expect(logNormalCdf(-40)).toBeCloseTo(-804.6084420137538, 9);
  });

  it('adds and subtracts in log space without overflow', () => {
    expect(logAdd(1000, 1000)).toBeCloseTo(1000 + Math.LN2, 12);
    expect(logAdd(-Infinity, 3)).toBe(3);
    expect(logSub(Math.log(5), Math.log(3))).toBeCloseTo(Math.log(2), 14);
    expect(logSub(7, 7)).toBe(-Infinity);
    expect(() => logSub(1, 2)).toThrow(RangeError);
  });
});
