import { createHash } from 'node:crypto';
import { ArtifactError } from './errors';

/**
 * What a store holds: a training checkpoint, addressed by its checkpoint address (the hash of its lineage:
 * hyperparameters, parent, batch, runtime envelope), or a published ONNX file, addressed by its SHA-256.
 */
export const ARTIFACT_KINDS = ['checkpoint', 'onnx'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** One artifact: its kind and its address, 64 lowercase hex characters. */
export interface ArtifactRef {
  kind: ArtifactKind;
  address: string;
}

/**
 * Content-addressed storage of checkpoints and ONNX files that every worker of a deployment shares: files
 * under DATA_DIR (one machine, or a shared volume) or PostgreSQL (only DATABASE_URL needed); an object store
 * (S3-compatible) implements the same five calls. The promises every implementation keeps:
 * - `put` is atomic: a reader sees all of the bytes or none, never a part, whatever crashes meanwhile; it is
 *   durable once it resolves; putting an address again replaces its bytes.
 * - `get` checks what it returns: an ONNX file that does not hash to its address is CORRUPT, never returned,
 *   and so are any bytes that do not hash to what the store recorded at `put` where it records it (PostgreSQL
 *   does; the files keep a checkpoint as its bare bytes, which the engine checks against the weights' SHA-256
 *   the version recorded). An address not stored is undefined.
 * - `delete` is durable once it resolves (an artifact deleted because it learned forgotten data must not come
 *   back after a crash); deleting what is not stored is not an error. `reclaim` then gives the space back as
 *   far as the store can (see each implementation for what remains, and where).
 * - A store that cannot be reached is UNAVAILABLE, naming it (without a password).
 */
export interface ArtifactStore {
  /** Where the artifacts are, for logs and errors: a directory, or a database's host, port and name. */
  readonly description: string;
  put(ref: ArtifactRef, bytes: Uint8Array): Promise<void>;
  get(ref: ArtifactRef): Promise<Uint8Array | undefined>;
  has(ref: ArtifactRef): Promise<boolean>;
  /** Removes the artifact for good; true when it was stored. */
  delete(ref: ArtifactRef): Promise<boolean>;
  /** After deletions: returns their space (PostgreSQL: VACUUM of the artifact tables). */
  reclaim(): Promise<void>;
  close(): Promise<void>;
}

const ADDRESS = /^[0-9a-f]{64}$/;

/** Checks a reference before it reaches a path or a query: a known kind, a 64-hex address. */
export function checkRef(ref: ArtifactRef): void {
  if (!ARTIFACT_KINDS.includes(ref?.kind)) {
    throw new ArtifactError('INVALID_ARGUMENT', `artifact kind must be one of ${ARTIFACT_KINDS.join(', ')}, got ${String(ref?.kind)}`, { field: 'kind' });
  }
  if (typeof ref.address !== 'string' || !ADDRESS.test(ref.address)) {
    throw new ArtifactError('INVALID_ARGUMENT', `${ref.kind} address must be 64 lowercase hex characters, got ${String(ref.address).slice(0, 80)}`, {
      field: 'address',
      kind: ref.kind,
    });
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** CORRUPT unless `bytes` hash to `expected`. */
export function checkSha256(ref: ArtifactRef, bytes: Uint8Array, expected: string, store: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    throw new ArtifactError('CORRUPT', `${ref.kind} ${ref.address} in ${store} has SHA-256 ${actual}, expected ${expected}`, {
      kind: ref.kind,
      address: ref.address,
      expectedSha256: expected,
      actualSha256: actual,
      store,
    });
  }
}

/** A short name of an artifact for messages: `checkpoint 3f2a…`. */
export function describeRef(ref: ArtifactRef): string {
  return `${ref.kind} ${ref.address}`;
}
