// One well-formed event per type for the specs, without its optional blocks; a test adds or spoils fields with
// `fields` (a fresh object each call, so that no test sees another's changes).

/** MODEL_PUBLISHED of version 1 of model 'm' (no runtime, no privacy). */
export function modelPublishedEvent<F extends object = object>(fields: F = {} as F) {
  return { type: 'MODEL_PUBLISHED', version: 1, modelId: 'm', modelVersion: 1, onnxSha256: 'a'.repeat(64), manifestHash: 'b'.repeat(64), metrics: {}, ...fields };
}

/** UNLEARN_COMPLETED of model 'm' from version 1 to 2 for request 'r' (evidence without membership, no guarantee). */
export function unlearnCompletedEvent<F extends object = object>(fields: F = {} as F) {
  return {
    type: 'UNLEARN_COMPLETED',
    version: 1,
    modelId: 'm',
    requestIds: ['r'],
    oldOnnxSha256: 'a'.repeat(64),
    newOnnxSha256: 'b'.repeat(64),
    modelVersion: 2,
    evidence: { forgottenCount: 3, before: {}, after: {} },
    ...fields,
  };
}
