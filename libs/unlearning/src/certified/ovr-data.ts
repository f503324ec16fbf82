// The training data of certified removal: each sample's features projected onto the unit L2 ball (the
// removal bound of Guo et al. 2020 assumes ||x|| <= 1), kept sparse (rows of nonzero columns), and its label
// as K one-vs-rest signs y_ik in {+1, -1}.
import { LabeledExample } from '../samples';

export interface OvrData {
  /** Samples (rows). */
  n: number;
  /** Features. */
  d: number;
  /** Classes, one binary problem each (one-vs-rest). */
  k: number;
  /** Row i's nonzeros are cols/values[rowStart[i] .. rowStart[i + 1]). */
  rowStart: Int32Array;
  cols: Int32Array;
  values: Float64Array;
  /** y_ik: +1 when sample i has label k, else -1; row-major n x k. */
  signs: Float64Array;
}

/**
 * The rows projected onto the unit ball: x / max(1, ||x||), in float64 from the features' float32 values (the
 * published graph computes the same projection in float32). Zero features are dropped; columns ascend.
 */
export function buildOvrData(rows: readonly LabeledExample[], d: number, k: number): OvrData {
  let nonzeros = 0;
  for (const row of rows) for (let j = 0; j < d; j++) if (Math.fround(row.features[j]) !== 0) nonzeros++;
  const rowStart = new Int32Array(rows.length + 1);
  const cols = new Int32Array(nonzeros);
  const values = new Float64Array(nonzeros);
  const signs = new Float64Array(rows.length * k).fill(-1);
  let next = 0;
  rows.forEach((row, i) => {
    let squares = 0;
    for (let j = 0; j < d; j++) {
      const v = Math.fround(row.features[j]);
      squares += v * v;
    }
    const scale = 1 / Math.max(1, Math.sqrt(squares));
    rowStart[i] = next;
    for (let j = 0; j < d; j++) {
      const v = Math.fround(row.features[j]);
      if (v === 0) continue;
      cols[next] = j;
      values[next] = v * scale;
      next++;
    }
    signs[i * k + row.label] = 1;
  });
  rowStart[rows.length] = next;
  return { n: rows.length, d, k, rowStart, cols, values, signs };
}
