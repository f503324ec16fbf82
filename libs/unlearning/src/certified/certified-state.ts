// What a certified version keeps in the checkpoint store: its weights in float64 (the published ONNX file holds
// them rounded to float32; the next removal's Newton step needs them exactly) and the Gram matrix of its samples
// (the removal bound's ||X||_2 comes from it). Both describe this version only: a removal downdates the Gram
// matrix by the removed rows, so no later version's state holds anything of a removed sample.
import { JsonValue } from '../events';
import { UnlearningError } from '../errors';
import { sha256Hex } from '../hash';
import { RuntimeEnvelope } from '../runtime-envelope';
import { addressedRuntime } from '../sharded-training';
import { packedLength } from './packed';

export interface CertifiedState {
  /** d x K, row-major. */
  w: Float64Array;
  /** Packed lower triangle of sum x xᵀ over the version's samples (projected rows). */
  gram: Float64Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/**
 * A zeroed state of d features and K classes laid out as it is stored: on a little-endian machine its weights and
 * Gram matrix are views of one buffer holding the weights then the matrix, so that serializeCertifiedState gives
 * that buffer without copying it (a removal writes the downdated matrix and w⁻ straight into what is stored).
 */
export function allocateCertifiedState(d: number, k: number): CertifiedState {
  if (!LITTLE_ENDIAN) return { w: new Float64Array(d * k), gram: new Float64Array(packedLength(d)) };
  const buffer = new ArrayBuffer((d * k + packedLength(d)) * 8);
  return { w: new Float64Array(buffer, 0, d * k), gram: new Float64Array(buffer, d * k * 8, packedLength(d)) };
}

/**
 * The state as bytes: the weights then the Gram matrix, float64 little-endian. A state allocateCertifiedState
 * laid out (or deserializeCertifiedState read) is its own bytes: the result is a view of its memory, not a copy,
 * and states are never changed once made.
 */
export function serializeCertifiedState(state: CertifiedState): Uint8Array {
  const { w, gram } = state;
  const total = (w.length + gram.length) * 8;
  if (LITTLE_ENDIAN && w.buffer === gram.buffer && w.byteOffset === 0 && gram.byteOffset === w.byteLength && w.buffer.byteLength === total)
    return new Uint8Array(w.buffer, 0, total);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const part of [w, gram]) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offset);
    else for (let i = 0; i < part.length; i++) view.setFloat64(offset + i * 8, part[i], true);
    offset += part.byteLength;
  }
  return out;
}

export function deserializeCertifiedState(bytes: Uint8Array, d: number, k: number): CertifiedState {
  const weights = d * k;
  const gram = packedLength(d);
  if (bytes.length !== (weights + gram) * 8)
    throw new UnlearningError('CHECKPOINT_CORRUPT', `a certified state of ${d} features and ${k} classes has ${(weights + gram) * 8} bytes, got ${bytes.length}`);
  const state = allocateCertifiedState(d, k);
  if (LITTLE_ENDIAN) {
    new Uint8Array(state.w.buffer).set(bytes);
    return state;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < weights; i++) state.w[i] = view.getFloat64(i * 8, true);
  for (let i = 0; i < gram; i++) state.gram[i] = view.getFloat64((weights + i) * 8, true);
  return state;
}

/**
 * The address of a version made by a Newton step: the step's inputs (the parent state and the ordered commitments
 * it removed) under the hyperparameters and what computed it, as a trained checkpoint's address chains its batches.
 */
export function addressCertifiedRemoval(envelope: RuntimeEnvelope, hyperparamsHash: string, parent: string, removedRoot: string): string {
  return sha256Hex('lethe-certified-removal|', addressedRuntime(envelope), '|', hyperparamsHash, '|', parent, '|', removedRoot);
}

/** The certified part of a version's manifest (`manifest.certified`): its budget and what used it. */
export interface CertifiedLedgerState {
  /** sigma epsilon / c. */
  budget: number;
  /** The training tolerance of the last training plus every Newton step's residual bound since. */
  budgetUsed: number;
  /** The version whose training (first, or a retrain) this version descends from by Newton steps. */
  trainedVersion: number;
  /** Newton steps since that training. */
  removals: number;
  /** This version's Newton step (absent for a trained version): its parent state, removed batch root and bound. */
  step?: { parentCheckpoint: string; removedBatchRoot: string; removed: number; residualBound: number };
}

export function certifiedManifestPart(state: CertifiedLedgerState): { [key: string]: JsonValue } {
  const part: { [key: string]: JsonValue } = {
    budget: state.budget,
    budgetUsed: state.budgetUsed,
    trainedVersion: state.trainedVersion,
    removals: state.removals,
  };
  if (state.step) part.step = { ...state.step };
  return { certified: part };
}

/** The certified state a version's manifest records; throws RUNTIME_ERROR when it has none. */
export function readCertifiedManifest(manifest: { [key: string]: JsonValue }, modelId: string, version: number): CertifiedLedgerState {
  const part = manifest.certified as unknown as CertifiedLedgerState | undefined;
  if (!part || typeof part.budget !== 'number' || typeof part.budgetUsed !== 'number' || typeof part.trainedVersion !== 'number' || typeof part.removals !== 'number')
    throw new UnlearningError('RUNTIME_ERROR', `model ${modelId} version ${version}: its manifest has no certified budget`);
  return part;
}
