/** A labeled example as datasets and parsers produce it: numeric features and an integer label. */
export interface LabeledExample {
  externalId: string;
  features: number[];
  label: number;
}

/**
 * A training sample as the engine sees it: the caller's externalId, the caller's 32-byte commitment
 * (SHA-256(salt || canonical sample), lowercase hex, computed outside this library) and the data itself.
 */
export interface Sample extends LabeledExample {
  commitment: string;
}

/** Packs the features of `rows` into one row-major float32 matrix. */
export function packFeatures(rows: readonly LabeledExample[], numFeatures: number): Float32Array {
  const out = new Float32Array(rows.length * numFeatures);
  rows.forEach((row, i) => out.set(row.features, i * numFeatures));
  return out;
}
