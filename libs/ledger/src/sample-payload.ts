import { endianness } from 'node:os';
import { LedgerError } from '@lethe/events';
import { CommittableSample, SALT_BYTES } from './commitment';

/** Typed arrays hold this machine's byte order; the payload's is little-endian. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** The first byte of a payload's plaintext: the layout below. */
export const PAYLOAD_FORMAT = 1;
const MAX_TEXT_BYTES = 0xffff;

/** What a sealed sample payload holds: everything of the sample that is private, and its salt. */
export interface SamplePayload extends CommittableSample {
  salt: Buffer;
}

/**
 * The plaintext of a sample's payload, before it is sealed under its subject's data key:
 * `format (1) ‖ label (u32 LE) ‖ salt (32) ‖ n (u32 LE) ‖ n features (float64 LE) ‖ externalId (u16 LE length,
 * UTF-8) ‖ has subject (1) ‖ [subjectId (u16 LE length, UTF-8)]`. Features keep their float64 value, so the
 * commitment (over their canonical JSON) can be recomputed from a decoded payload.
 */
export function encodeSamplePayload(payload: SamplePayload): Buffer {
  const { label, salt, features, externalId, subjectId } = payload;
  if (salt.length !== SALT_BYTES) throw new LedgerError('INVALID_ARGUMENT', `salt has ${salt.length} bytes, want ${SALT_BYTES}`, 'salt');
  if (!Number.isInteger(label) || label < 0 || label > 0xffffffff) throw new LedgerError('INVALID_ARGUMENT', 'label must be a non-negative integer', 'label');
  const external = textBytes(externalId, 'externalId');
  const subject = subjectId === undefined ? undefined : textBytes(subjectId, 'subjectId');
  const size = 1 + 4 + SALT_BYTES + 4 + 8 * features.length + 2 + external.length + 1 + (subject === undefined ? 0 : 2 + subject.length);
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(PAYLOAD_FORMAT, 0);
  at = out.writeUInt32LE(label, at);
  at += salt.copy(out, at);
  at = out.writeUInt32LE(features.length, at);
  if (LITTLE_ENDIAN) {
    // One copy of the float64 array's bytes instead of a call per value (a fifth of the encoding's time).
    const values = Float64Array.from(features);
    at += Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(out, at);
  } else for (const f of features) at = out.writeDoubleLE(f, at);
  at = out.writeUInt16LE(external.length, at);
  at += external.copy(out, at);
  at = out.writeUInt8(subject === undefined ? 0 : 1, at);
  if (subject !== undefined) {
    at = out.writeUInt16LE(subject.length, at);
    subject.copy(out, at);
  }
  return out;
}

/** The largest float32 (FLT_MAX): a feature beyond it cannot be held as float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** A decoded payload whose features may have been written into a float32 array instead. */
export interface DecodedPayload extends Omit<SamplePayload, 'features'> {
  features: number[] | Float32Array;
}

/**
 * The sample a payload's plaintext holds; CORRUPT when the bytes are not a payload of this format. With
 * `float32Into` (a view of exactly the sample's width), the features are written there and it is returned as
 * the features, unless one does not fit a float32 (then they come back as numbers, for validation to name).
 */
export function decodeSamplePayload(bytes: Buffer): SamplePayload;
export function decodeSamplePayload(bytes: Buffer, float32Into: Float32Array): DecodedPayload;
export function decodeSamplePayload(bytes: Buffer, float32Into?: Float32Array): DecodedPayload {
  const corrupt = (why: string) => new LedgerError('CORRUPT', `sample payload: ${why}`);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw corrupt(`ends after ${bytes.length} bytes, want at least ${at + n}`);
  };
  need(1 + 4 + SALT_BYTES + 4);
  if (bytes[0] !== PAYLOAD_FORMAT) throw corrupt(`format ${bytes[0]}, want ${PAYLOAD_FORMAT}`);
  const label = bytes.readUInt32LE(1);
  const salt = Buffer.from(bytes.subarray(5, 5 + SALT_BYTES));
  const count = bytes.readUInt32LE(5 + SALT_BYTES);
  at = 9 + SALT_BYTES;
  need(8 * count);
  const values = readFloat64s(bytes, at, count);
  at += 8 * count;
  let features: number[] | Float32Array | undefined;
  if (float32Into !== undefined && float32Into.length === count) {
    let fits = true;
    for (let i = 0; i < count && fits; i++) fits = Math.abs(values[i]) <= FLOAT32_MAX; // false for NaN too
    if (fits) {
      float32Into.set(values);
      features = float32Into;
    }
  }
  features ??= Array.from(values);
  const readText = () => {
    need(2);
    const length = bytes.readUInt16LE(at);
    at += 2;
    need(length);
    const text = bytes.toString('utf8', at, at + length);
    at += length;
    return text;
  };
  const externalId = readText();
  need(1);
  const hasSubject = bytes[at++];
  if (hasSubject > 1) throw corrupt(`subject flag ${hasSubject}`);
  const payload: DecodedPayload = { externalId, features, label, salt };
  if (hasSubject === 1) payload.subjectId = readText();
  if (at !== bytes.length) throw corrupt(`${bytes.length - at} bytes after the end`);
  return payload;
}

/** `count` float64 little-endian values at `at`, copied into an array of their own (aligned, whatever `at` is). */
function readFloat64s(bytes: Buffer, at: number, count: number): Float64Array {
  const values = new Float64Array(count);
  if (LITTLE_ENDIAN) bytes.copy(Buffer.from(values.buffer), 0, at, at + 8 * count);
  else for (let i = 0; i < count; i++) values[i] = bytes.readDoubleLE(at + 8 * i);
  return values;
}

function textBytes(value: string, field: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > MAX_TEXT_BYTES) throw new LedgerError('INVALID_ARGUMENT', `${field} is longer than ${MAX_TEXT_BYTES} bytes`, field);
  return bytes;
}
