// How a sample is stored without its plaintext: keyed hashes to find it, and its payload sealed under its
// subject's data key and bound to its row (dataset and commitment).
import { lookupHash, openPayload, payloadAssociatedData, sealPayload } from '@lethe/keystore';
import { DecodedPayload, SamplePayload, decodeSamplePayload, encodeSamplePayload } from './sample-payload';

/** The keyed hash a sample is found by externalId with (unique in its dataset). */
export function externalHashOf(lookupKey: Uint8Array, datasetId: string, externalId: string): string {
  return lookupHash(lookupKey, ['externalId', datasetId], externalId);
}

/** The keyed hash of a data subject: its subjectId, or for a sample without one, the sample itself. */
export function subjectHashOf(lookupKey: Uint8Array, datasetId: string, sample: { externalId: string; subjectId?: string }): string {
  return sample.subjectId !== undefined
    ? lookupHash(lookupKey, ['subjectId', datasetId], sample.subjectId)
    : lookupHash(lookupKey, ['sampleSubject', datasetId], sample.externalId);
}

/** The sample sealed under its subject's data key, bound to its dataset and commitment. */
export function sealSample(dataKey: Uint8Array, datasetId: string, commitment: string, payload: SamplePayload): Buffer {
  const plaintext = encodeSamplePayload(payload);
  try {
    return sealPayload(dataKey, plaintext, payloadAssociatedData(datasetId, commitment));
  } finally {
    plaintext.fill(0);
  }
}

/**
 * A sealed sample opened (PAYLOAD_AUTH_FAILED under another key, row or after tampering); with `float32Into`,
 * its features written there (see decodeSamplePayload).
 */
export function openSample(dataKey: Uint8Array, datasetId: string, commitment: string, sealed: Uint8Array): SamplePayload;
export function openSample(dataKey: Uint8Array, datasetId: string, commitment: string, sealed: Uint8Array, float32Into: Float32Array): DecodedPayload;
export function openSample(dataKey: Uint8Array, datasetId: string, commitment: string, sealed: Uint8Array, float32Into?: Float32Array): DecodedPayload {
  const plaintext = openPayload(dataKey, sealed, payloadAssociatedData(datasetId, commitment));
  try {
    return float32Into === undefined ? decodeSamplePayload(plaintext) : decodeSamplePayload(plaintext, float32Into);
  } finally {
    plaintext.fill(0);
  }
}
