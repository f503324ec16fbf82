import * as ort from 'onnxruntime-node';
import { UnlearningError } from './errors';
import { sha256Hex, isHex32 } from './hash';
import { createSession, RuntimeOptions } from './runtime';
import { INPUT_NAME, LABEL_NAME, PROBABILITIES_NAME } from './inference-graph';

export interface Predictions {
  /** Row-major float[rows, classes]. */
  probabilities: Float32Array;
  labels: number[];
  classes: number;
}

/** A published model whose bytes were checked against the expected SHA-256 before loading. */
export class VerifiedModel {
  constructor(
    readonly sha256: string,
    readonly numFeatures: number,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Predicts rows given as arrays of numbers, or as a packed row-major matrix. */
  async predict(rows: readonly (readonly number[])[] | Float32Array): Promise<Predictions> {
    const packed = rows instanceof Float32Array ? rows : packRows(rows, this.numFeatures);
    if (packed.length % this.numFeatures !== 0) {
      throw new UnlearningError('INVALID_SAMPLE', `input has ${packed.length} values, not a multiple of ${this.numFeatures} features`);
    }
    const count = packed.length / this.numFeatures;
    if (count === 0) return { probabilities: new Float32Array(0), labels: [], classes: 0 };
    const out = await this.session.run({ [INPUT_NAME]: new ort.Tensor('float32', packed, [count, this.numFeatures]) });
    const probabilities = out[PROBABILITIES_NAME].data as Float32Array;
    const labels = Array.from(out[LABEL_NAME].data as BigInt64Array, (v) => Number(v));
    return { probabilities, labels, classes: probabilities.length / count };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Refuses (HASH_MISMATCH) bytes whose SHA-256 differs from `expectedSha256`, then loads them on onnxruntime-node. */
export async function loadVerifiedModel(bytes: Uint8Array, expectedSha256: string, runtime: RuntimeOptions = {}): Promise<VerifiedModel> {
  if (!isHex32(expectedSha256)) {
    throw new UnlearningError('INVALID_REQUEST', `expected SHA-256 must be 64 lowercase hex characters, got ${expectedSha256}`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== expectedSha256) {
    throw new UnlearningError('HASH_MISMATCH', `model SHA-256 is ${actual}, expected ${expectedSha256}`, {
      expectedSha256,
      actualSha256: actual,
    });
  }
  let session: ort.InferenceSession;
  try {
    session = await createSession(bytes, runtime);
  } catch (error) {
    throw new UnlearningError('RUNTIME_ERROR', `cannot load model: ${(error as Error).message}`);
  }
  const meta = session.inputMetadata?.[0] as { isTensor?: boolean; shape?: (number | string)[] } | undefined;
  const features = meta && meta.isTensor && meta.shape ? meta.shape[1] : undefined;
  if (typeof features !== 'number' || !session.outputNames.includes(PROBABILITIES_NAME) || !session.outputNames.includes(LABEL_NAME)) {
    await session.release();
    throw new UnlearningError('INVALID_REQUEST', `model must take '${INPUT_NAME}' float[N, features] and give '${PROBABILITIES_NAME}' and '${LABEL_NAME}'`);
  }
  return new VerifiedModel(actual, features, session);
}

function packRows(rows: readonly (readonly number[])[], numFeatures: number): Float32Array {
  const out = new Float32Array(rows.length * numFeatures);
  rows.forEach((row, i) => {
    if (row.length !== numFeatures) throw new UnlearningError('INVALID_SAMPLE', `row ${i} has ${row.length} features, want ${numFeatures}`);
    out.set(row, i * numFeatures);
  });
  return out;
}
