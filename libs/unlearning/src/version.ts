import * as ort from 'onnxruntime-node';

/** Recorded in every manifest and ONNX file; bump it whenever training arithmetic or graph layout changes. */
export const UNLEARNING_CODE_VERSION = '0.1.0';

/** The onnxruntime version that trains and evaluates (float results may change across its versions). */
export const ONNXRUNTIME_VERSION: string = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';

/**
 * What else, besides the hyperparameters and the data, fixes a checkpoint's bits: this library's code version
 * and the onnxruntime version. Part of every checkpoint address, so a persistent store is never asked to
 * resume with code other than the code that computed the weights.
 */
export const TRAINING_RUNTIME = `lethe-unlearning ${UNLEARNING_CODE_VERSION}; onnxruntime ${ONNXRUNTIME_VERSION}`;
