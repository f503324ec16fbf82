import { UnlearningError } from './errors';

/**
 * Feature-level unlearning: a model whose config names `maskedFeatures` (column indexes) never reads those
 * columns. Training zeroes them in every batch it feeds the step graph, and the published inference graph
 * replaces them by 0 before its first layer (Where, not a product: a product by 0 keeps the sign of a negative
 * input and turns an infinite one into NaN). The input keeps its width; changing a masked column changes no
 * output bit.
 */

/** Checks a list of column indexes of a `numFeatures`-wide input: non-empty integers in range, no duplicates. Returns them sorted. */
export function checkMaskedFeatures(value: unknown, numFeatures: number, field = 'maskedFeatures'): number[] {
  const fail = (message: string): never => {
    throw new UnlearningError('INVALID_CONFIG', `${field}${message.startsWith('[') ? '' : ' '}${message}`);
  };
  if (!Array.isArray(value)) return fail('must be an array of column indexes');
  if (value.length === 0) fail('must name at least one column');
  const seen = new Set<number>();
  value.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(`[${i}] must be an integer column index, got ${JSON.stringify(v)}`);
    if (v < 0 || v >= numFeatures) fail(`[${i}] is ${v}, beyond the ${numFeatures} columns (0..${numFeatures - 1})`);
    if (seen.has(v)) fail(`[${i}] names column ${v} twice`);
    seen.add(v);
  });
  if (seen.size === numFeatures) fail(`names every one of the ${numFeatures} columns: nothing would be left to learn from`);
  return [...seen].sort((a, b) => a - b);
}

/** The union of two column lists, sorted (a feature forgotten once stays forgotten). */
export function unionMaskedFeatures(a: readonly number[] | undefined, b: readonly number[]): number[] {
  return [...new Set([...(a ?? []), ...b])].sort((x, y) => x - y);
}

/** Zeroes the masked columns of `rows` consecutive rows of `x` (row-major, `width` wide), in place. */
export function zeroMaskedColumns(x: Float32Array, rows: number, width: number, masked: readonly number[] | undefined): void {
  if (!masked || masked.length === 0) return;
  for (let i = 0; i < rows; i++) {
    const base = i * width;
    for (const j of masked) x[base + j] = 0;
  }
}

/** A float32 keep-vector: 1 for a column the model reads, 0 for a masked one. */
export function keepVector(width: number, masked: readonly number[]): Float32Array {
  const keep = new Float32Array(width).fill(1);
  for (const j of masked) keep[j] = 0;
  return keep;
}

/** `{maskedFeatures}` of a config that masks columns, `{}` otherwise: spread into an ensemble member. */
export function maskOf(config: { maskedFeatures?: number[] }): { maskedFeatures?: readonly number[] } {
  return config.maskedFeatures && config.maskedFeatures.length > 0 ? { maskedFeatures: config.maskedFeatures } : {};
}

/** `{features}` of UNLEARN_COMPLETED for a version of a config that masks columns (every one it does not read), `{}` otherwise. */
export function maskedFeaturesField(config: { maskedFeatures?: number[] }): { features?: number[] } {
  return config.maskedFeatures && config.maskedFeatures.length > 0 ? { features: [...config.maskedFeatures] } : {};
}
