import { hashLeaf, toHex } from '@lethe/merkle';
import { rehashEntry } from './rehash-entry';

const event = { type: 'DATASET_REGISTERED', version: 1, datasetId: 'ds-1', name: 'iris', features: 4, classes: 3 };
const canonical = '{"classes":3,"datasetId":"ds-1","features":4,"name":"iris","type":"DATASET_REGISTERED","version":1}';
const leafOf = (text: string) => toHex(hashLeaf(new TextEncoder().encode(text)));

describe('rehashEntry', () => {
  it('accepts a canonical valid event whose leaf hash matches', () => {
    const result = rehashEntry({ index: 4, leafHash: leafOf(canonical), event: canonical });
    expect(result.failure).toBeUndefined();
    expect(result.event).toEqual(event);
    expect(toHex(result.leafHash)).toBe(leafOf(canonical));
  });

  it.each([
    ['a leaf hash the event does not hash to', canonical, 'ff'.repeat(32), /hashes to [0-9a-f]{64}, the server says f{64}/],
    ['non-canonical JSON (key order)', JSON.stringify(event), undefined, /not canonical/],
    ['non-canonical JSON (whitespace)', canonical.replace(':', ': '), undefined, /not canonical/],
    ['JSON that does not parse', canonical.slice(0, -1), undefined, /not JSON/],
    ['an invalid event', canonical.replace('"features":4', '"features":-4'), undefined, /not a valid event: DATASET_REGISTERED.features/],
    ['an unknown type', '{"type":"NOPE","version":1}', undefined, /event.type must be one of/],
  ])('flags %s as BAD_ENTRY at its index, and still hashes its bytes', (_, text, leafHash, message) => {
    const result = rehashEntry({ index: 7, leafHash: leafHash ?? leafOf(text), event: text });
    expect(result.failure).toEqual({ code: 'BAD_ENTRY', index: 7, message: expect.stringMatching(message) });
    expect(toHex(result.leafHash)).toBe(leafOf(text));
  });
});
