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

/**
 * A published model whose bytes were checked against the expected SHA-256 before loading.
 *
 * Its session lives until `release()` and until every use begun before it has ended: a prediction counts as a use
 * while it runs, and a holder that must bridge a gap before its prediction (a cache handing the model out) takes a
 * use with `retain()`. onnxruntime-node runs a session on a later turn of the event loop (`run` waits for
 * `setImmediate`), so a session released in between would fail the prediction ("Session already disposed");
 * here the release waits for the uses instead. Once it is asked for, `retain()` is refused, and so is a prediction
 * unless a use still keeps the session.
 */
export class VerifiedModel {
  private uses = 0;
  private released?: Promise<void>;
  private unused?: () => void;

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
    // A holder's prediction may begin after the release was asked for (the holder's use keeps the session).
    if (this.released && this.uses === 0) throw this.releasedError();
    const done = this.use();
    try {
      const out = await this.session.run({ [INPUT_NAME]: new ort.Tensor('float32', packed, [count, this.numFeatures]) });
      const probabilities = out[PROBABILITIES_NAME].data as Float32Array;
      const labels = Array.from(out[LABEL_NAME].data as BigInt64Array, (v) => Number(v));
      return { probabilities, labels, classes: probabilities.length / count };
    } finally {
      done();
    }
  }

  /**
   * Keeps the session until the returned function is called (once; later calls do nothing), so that a
   * `release()` asked for meanwhile waits. Refused (RUNTIME_ERROR) once the release was asked for.
   */
  retain(): () => void {
    if (this.released) throw this.releasedError();
    return this.use();
  }

  /** Releases the session once no use holds it (at once when none does); resolves then. A second call releases nothing more. */
  release(): Promise<void> {
    this.released ??= (this.uses === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.unused = resolve))).then(() =>
      this.session.release(),
    );
    return this.released;
  }

  private use(): () => void {
    this.uses += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.uses -= 1;
      if (this.uses === 0) this.unused?.();
    };
  }

  private releasedError(): UnlearningError {
    return new UnlearningError('RUNTIME_ERROR', `model ${this.sha256} was released: load it again to predict`);
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
