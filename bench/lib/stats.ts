// Summary statistics over repeated runs: the mean with its 95% confidence interval (Student's t over the runs).

/**
 * Two-sided 95% quantiles of Student's t, t(0.975, df), for df = 1..30 (the standard table, e.g. NIST/SEMATECH
 * e-Handbook 1.3.6.7.2); beyond 30 the nearest smaller tabulated df of 40, 60, 120, then the normal's 1.960.
 */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`degrees of freedom must be a positive integer, got ${df}`);
  if (df <= 30) return T975[df - 1];
  if (df < 60) return 2.021;
  if (df < 120) return 2.0;
  return df < 1000 ? 1.98 : 1.96;
}

export interface MeanInterval {
  n: number;
  mean: number;
  /** The 95% interval of the mean; equal to the mean when n = 1. */
  low: number;
  high: number;
}

/** The mean of `values` and its 95% t-interval (the runs taken as independent draws). */
export function meanInterval(values: readonly number[]): MeanInterval {
  const n = values.length;
  if (n === 0) return { n, mean: Number.NaN, low: Number.NaN, high: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { n, mean, low: mean, high: mean };
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1);
  const half = tQuantile975(n - 1) * Math.sqrt(variance / n);
  return { n, mean, low: mean - half, high: mean + half };
}

/** "12.3 [11.8, 12.9]" with `digits` decimals (and a unit after each number when given). */
export function formatInterval(interval: MeanInterval, digits: number, unit = ''): string {
  const f = (v: number) => `${v.toFixed(digits)}${unit}`;
  return interval.n < 2 ? f(interval.mean) : `${f(interval.mean)} [${f(interval.low)}, ${f(interval.high)}]`;
}
