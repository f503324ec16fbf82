import type { ArtifactKind } from './artifact-store';

/** What went wrong, for callers to branch on (never on the message text). */
export type ArtifactErrorCode =
  /** An argument is malformed: an unknown kind, an address that is not 64 lowercase hex characters. */
  | 'INVALID_ARGUMENT'
  /** The stored bytes do not hash to what was recorded when they were put (or, for an ONNX file, to its address). */
  | 'CORRUPT'
  /** The store cannot be reached: its database refuses connections, its directory is not there. */
  | 'UNAVAILABLE';

export interface ArtifactErrorDetails {
  field?: string;
  kind?: ArtifactKind;
  address?: string;
  expectedSha256?: string;
  actualSha256?: string;
  /** The store, as `ArtifactStore.description` names it (no password). */
  store?: string;
}

/** Errors of libs/artifacts: the code says what, the fields say which artifact. */
export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
  readonly field?: string;
  readonly kind?: ArtifactKind;
  readonly address?: string;
  readonly expectedSha256?: string;
  readonly actualSha256?: string;
  readonly store?: string;

  constructor(readonly code: ArtifactErrorCode, message: string, details: ArtifactErrorDetails = {}) {
    super(message);
    Object.assign(this, details);
  }
}
