import { LabeledExample, packFeatures } from './samples';
import { loadVerifiedModel } from './serve';
import { SeededRandom } from './random';
import { RuntimeOptions } from './runtime';

/** A column's permutation importance: accuracy on the rows minus accuracy with the column's values shuffled among them. */
export interface ColumnImportance {
  column: number;
  importance: number;
}

/**
 * Permutation importance (Breiman 2001) of `columns` for a published ONNX file on `rows`: for each column, its
 * values are shuffled among the rows (a seeded Fisher-Yates, the same shuffle for every model), the file runs on
 * the result, and the importance is the accuracy lost. A column the model never reads has importance 0 exactly:
 * no prediction changes. The file's hash is checked as it is loaded.
 */
export async function computePermutationImportance(
  onnx: Uint8Array,
  onnxSha256: string,
  rows: readonly LabeledExample[],
  columns: readonly number[],
  seed: string,
  runtime?: RuntimeOptions,
): Promise<{ accuracy: number; columns: ColumnImportance[] }> {
  const model = await loadVerifiedModel(onnx, onnxSha256, runtime);
  try {
    const width = model.numFeatures;
    const base = packFeatures(rows, width);
    const accuracyOf = async (x: Float32Array) => {
      if (rows.length === 0) return 0;
      const out = await model.predict(x);
      return out.labels.filter((label, i) => label === rows[i].label).length / rows.length;
    };
    const accuracy = await accuracyOf(base);
    const out: ColumnImportance[] = [];
    for (const column of columns) {
      const shuffled = base.slice();
      const order = Array.from({ length: rows.length }, (_, i) => i);
      const random = new SeededRandom(`lethe-permutation|${seed}|${column}`);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random.nextFloat() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      order.forEach((from, to) => (shuffled[to * width + column] = base[from * width + column]));
      out.push({ column, importance: accuracy - (await accuracyOf(shuffled)) });
    }
    return { accuracy, columns: out };
  } finally {
    await model.release();
  }
}
