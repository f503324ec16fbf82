import { allocateCertifiedState, deserializeCertifiedState, serializeCertifiedState } from './certified-state';
import { packedLength } from './packed';

describe('certified state bytes', () => {
  const d = 5;
  const k = 3;
  const fill = (state: { w: Float64Array; gram: Float64Array }) => {
    state.w.forEach((_, i) => (state.w[i] = (i + 1) / 7));
    state.gram.forEach((_, i) => (state.gram[i] = -(i + 1) / 3));
    return state;
  };

  it('gives the same bytes for a state laid out as stored (a view of its memory, no copy) and for separate arrays', () => {
    const stored = fill(allocateCertifiedState(d, k));
    const separate = fill({ w: new Float64Array(d * k), gram: new Float64Array(packedLength(d)) });
    const bytes = serializeCertifiedState(stored);
    expect(Buffer.from(bytes).equals(Buffer.from(serializeCertifiedState(separate)))).toBe(true);
    expect(bytes.length).toBe((d * k + packedLength(d)) * 8);
    // The stored layout's bytes are its memory: a change to the state shows in them (states are never changed once made).
    expect(bytes.buffer).toBe(stored.w.buffer);
    stored.gram[0] = 42;
    expect(new DataView(bytes.buffer).getFloat64(d * k * 8, true)).toBe(42);
  });

  it('reads back what it wrote, into its own memory (not the bytes given)', () => {
    const bytes = serializeCertifiedState(fill({ w: new Float64Array(d * k), gram: new Float64Array(packedLength(d)) }));
    const state = deserializeCertifiedState(bytes, d, k);
    expect(Array.from(state.w)).toEqual(Array.from({ length: d * k }, (_, i) => (i + 1) / 7));
    expect(Array.from(state.gram)).toEqual(Array.from({ length: packedLength(d) }, (_, i) => -(i + 1) / 3));
    expect(state.w.buffer).not.toBe(bytes.buffer);
    expect(Buffer.from(serializeCertifiedState(state)).equals(Buffer.from(bytes))).toBe(true);
    expect(() => deserializeCertifiedState(bytes.subarray(8), d, k)).toThrow(`a certified state of ${d} features and ${k} classes has ${bytes.length} bytes, got ${bytes.length - 8}`);
  });
});
