/** Injection token of the validated AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');
/** Injection token of DATA_DIR: checkpoints, ONNX files (and the embedded PostgreSQL's files). */
export const DATA_DIR = Symbol('DATA_DIR');
/** Injection token of the KeyStore of sample data keys (FileKeyStore in DATA_DIR/keys), opened at start-up. */
export const KEY_STORE = Symbol('KEY_STORE');
/** Injection token of the process's ArtifactStore (@lethe/artifacts): checkpoints and ONNX files. */
export const ARTIFACT_STORE = Symbol('ARTIFACT_STORE');
