// Special functions the accountants need, in float64 with care for the tails: log-space sums, erfc and the
// normal CDF accurate to a few ulps far into both tails (where 1 - erf(x) would lose every digit).

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** log(e^a + e^b) without overflow; -Infinity is log 0. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^a - e^b) for a >= b; -Infinity when they are equal. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`logSub: the result would be negative (log ${a} - log ${b})`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}

/**
 * log(erfc(x)) for every finite x. For x < 2 from erf's series with positive terms,
 * erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)) (no cancellation); for x >= 2 from the
 * continued fraction erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) (modified Lentz),
 * which keeps full relative precision where erfc underflows (log erfc(40) = -1604.3...).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.LN2;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2) return Math.log1p(-erfSeries(x));
  return -x * x - LOG_SQRT_PI + Math.log(erfcFraction(x));
}

/** erfc(x); underflows to 0 beyond x = 26.5 (use logErfc there). */
export function erfc(x: number): number {
  return Math.exp(logErfc(x));
}

/** log Φ(x), Φ the standard normal CDF: log(erfc(-x/√2) / 2). */
export function logNormalCdf(x: number): number {
  return logErfc(-x / Math.SQRT2) - Math.LN2;
}

/** Φ(x), the standard normal CDF, with full relative precision in the lower tail. */
export function normalCdf(x: number): number {
  return Math.exp(logNormalCdf(x));
}

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** 1 / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...)))) by the modified Lentz method. */
function erfcFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / f;
}
