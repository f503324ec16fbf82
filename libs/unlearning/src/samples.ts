/**
 * One example's features: numbers as parsed, or a float32 view (see compactFeatures). Training and evaluation
 * read every feature as float32, so both forms give the same bits.
 */
export type FeatureRow = number[] | Float32Array;

/** A labeled example as datasets and parsers produce it: numeric features and an integer label. */
export interface LabeledExample {
  externalId: string;
  features: FeatureRow;
  label: number;
}

/**
 * A training sample as the engine sees it: the caller's externalId, the caller's 32-byte commitment
 * (SHA-256(salt || canonical sample), lowercase hex, computed outside this library) and the data itself.
 */
export interface Sample extends LabeledExample {
  commitment: string;
  /**
   * The learn batch that added it (a model's online learning, UnlearningMethod.relearn with `append`): 0 or
   * absent for the samples of the model's first training; b >= 1 for those the b-th learn appended, which
   * every shard learns in its slice R - 1 + b (see assignment.ts).
   */
  batch?: number;
}

/**
 * What a training step reads of a row: its features and its label. The step runners gather a batch's rows
 * straight from the samples (no packed copy of the training set), as float32: the bits of compactFeatures'
 * views and of number arrays are the same.
 */
export type TrainingRow = Pick<LabeledExample, 'features' | 'label'>;

/** Packs the features of `rows` into one row-major float32 matrix. */
export function packFeatures(rows: readonly LabeledExample[], numFeatures: number): Float32Array {
  const out = new Float32Array(rows.length * numFeatures);
  rows.forEach((row, i) => out.set(row.features, i * numFeatures));
  return out;
}

/** The largest magnitude a feature may have (float32's limit, rounded down): validation rejects larger ones. */
export const FEATURE_LIMIT = 3.4e38;

/**
 * The same examples with their features as views into one float32 matrix (4 bytes a value outside the
 * JavaScript heap instead of 8 inside it, in one allocation). A large training set held as number arrays
 * makes every full garbage collection mark each value; held this way, marking it costs next to nothing.
 * Rows already in float32, of another length than the first array, or with a value float32 cannot hold
 * (NaN, infinite, too large) are kept as they are, so validation still names the value.
 */
export function compactFeatures<T extends LabeledExample>(rows: readonly T[]): T[] {
  const width = rows.find((row) => Array.isArray(row.features))?.features.length ?? 0;
  const packable = rows.map((row) => Array.isArray(row.features) && row.features.length === width && row.features.every(fitsFloat32));
  const matrix = new Float32Array(packable.filter(Boolean).length * width);
  let next = 0;
  return rows.map((row, i) => {
    if (!packable[i]) return row; // already float32, or left for validation to name
    const view = matrix.subarray(next * width, (next + 1) * width);
    view.set(row.features);
    next++;
    return { ...row, features: view };
  });
}

function fitsFloat32(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= FEATURE_LIMIT;
}
