// Checkpoints and ONNX files, content-addressed, in a store every worker shares: files under DATA_DIR or
// PostgreSQL (an S3-compatible object store can implement the same interface).
export { ARTIFACT_KINDS, checkRef, describeRef } from './artifact-store';
export type { ArtifactKind, ArtifactRef, ArtifactStore } from './artifact-store';
export { ArtifactError } from './errors';
export type { ArtifactErrorCode, ArtifactErrorDetails } from './errors';
export { FileArtifactStore } from './file-artifact-store';
export { PostgresArtifactStore, describeUrl } from './postgres-artifact-store';
export type { PostgresArtifactStoreOptions } from './postgres-artifact-store';
export { removeFileDurably, syncDirectory } from './durable-file';
