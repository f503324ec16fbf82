import { randomBytes } from 'node:crypto';
import { PAYLOAD_FORMAT, decodeSamplePayload, encodeSamplePayload } from './sample-payload';

describe('sample payloads', () => {
  it('round-trips every field, features as float64 exactly, with and without a subject', () => {
    const salt = randomBytes(32);
    const features = [0.1, -2.5e-300, 1e300, 0, -0, 3.141592653589793, 123456789.123];
    for (const subjectId of [undefined, 'ünïcode subject ✓']) {
      const payload = { externalId: 'sample-ⓘ', features, label: 7, salt, ...(subjectId === undefined ? {} : { subjectId }) };
      const bytes = encodeSamplePayload(payload);
      expect(bytes[0]).toBe(PAYLOAD_FORMAT);
      const back = decodeSamplePayload(bytes);
      expect(back).toEqual(payload);
      expect(Object.is(back.features[4], -0)).toBe(true);
      // The float64 bytes of each feature are in the plaintext, little-endian (what the erasure scan looks for).
      const f = Buffer.alloc(8);
      f.writeDoubleLE(features[6]);
      expect(bytes.includes(f)).toBe(true);
    }
  });

  it('refuses bytes that are not a payload, naming why', () => {
    const bytes = encodeSamplePayload({ externalId: 'x', features: [1, 2], label: 1, salt: randomBytes(32) });
    expect(() => decodeSamplePayload(bytes.subarray(0, bytes.length - 1))).toThrow(/sample payload: ends after/);
    expect(() => decodeSamplePayload(Buffer.concat([bytes, Buffer.of(0)]))).toThrow(/1 bytes after the end/);
    const other = Buffer.from(bytes);
    other[0] = 9;
    expect(() => decodeSamplePayload(other)).toThrow(/format 9, want 1/);
    expect(() => encodeSamplePayload({ externalId: 'x', features: [], label: 1, salt: randomBytes(16) })).toThrow(/salt has 16 bytes/);
  });
});
