import { randomBytes } from 'node:crypto';
import { SEAL_OVERHEAD, encodeParts, openPayload, payloadAssociatedData, sealPayload } from './index';
import { thrown } from './testing/thrown';


const key = randomBytes(32);
const rowA = payloadAssociatedData('dataset-1', 'aa'.repeat(32));
const rowB = payloadAssociatedData('dataset-1', 'bb'.repeat(32));

describe('sealPayload / openPayload', () => {
  it.each([0, 1, 15, 16, 17, 784 * 4 + 100])('round-trips %i bytes', (size) => {
    const plaintext = randomBytes(size);
    const sealed = sealPayload(key, plaintext, rowA);
    expect(sealed.length).toBe(size + SEAL_OVERHEAD);
    expect(openPayload(key, sealed, rowA).equals(plaintext)).toBe(true);
  });

  it('uses a fresh nonce per message, so equal plaintexts seal differently', () => {
    const plaintext = Buffer.from('the same sample');
    const one = sealPayload(key, plaintext, rowA);
    const two = sealPayload(key, plaintext, rowA);
    expect(one.subarray(1, 13).equals(two.subarray(1, 13))).toBe(false);
    expect(one.equals(two)).toBe(false);
  });

  it('draws a distinct nonce for each of 5,000 seals (the nonce pool is refilled about ten times)', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 5000; i++) nonces.add(sealPayload(key, Buffer.of(i & 0xff), rowA).subarray(1, 13).toString('hex'));
    expect(nonces.size).toBe(5000);
  });

  it('leaves no plaintext in the sealed bytes (and the scan finds it where it is)', () => {
    const marker = Buffer.from('subject-MARKER-7f3a');
    const plaintext = Buffer.concat([randomBytes(40), marker, randomBytes(40)]);
    expect(plaintext.includes(marker)).toBe(true);
    expect(sealPayload(key, plaintext, rowA).includes(marker)).toBe(false);
  });

  it('refuses every tampered byte: version as malformed, nonce, ciphertext and tag as unauthenticated', () => {
    const sealed = sealPayload(key, Buffer.from('sixteen byte msg'), rowA);
    for (let i = 0; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] ^= 0x01;
      expect(thrown(() => openPayload(key, tampered, rowA)).code).toBe(i === 0 ? 'MALFORMED_PAYLOAD' : 'PAYLOAD_AUTH_FAILED');
    }
  });

  it("refuses another row's associated data, so ciphertexts cannot be swapped between rows", () => {
    const sealedA = sealPayload(key, Buffer.from('row A'), rowA);
    expect(openPayload(key, sealedA, rowA).toString()).toBe('row A');
    expect(thrown(() => openPayload(key, sealedA, rowB))).toMatchObject({ code: 'PAYLOAD_AUTH_FAILED', field: 'sealed' });
    expect(thrown(() => openPayload(key, sealedA, payloadAssociatedData('dataset-2', 'aa'.repeat(32)))).code).toBe('PAYLOAD_AUTH_FAILED');
  });

  it('refuses another key', () => {
    const sealed = sealPayload(key, Buffer.from('x'), rowA);
    expect(thrown(() => openPayload(randomBytes(32), sealed, rowA)).code).toBe('PAYLOAD_AUTH_FAILED');
  });

  it('names what is malformed', () => {
    expect(thrown(() => openPayload(key, Buffer.alloc(28), rowA))).toMatchObject({
      code: 'MALFORMED_PAYLOAD',
      message: 'sealed payload has 28 bytes, want at least 29',
      got: 28,
      want: 29,
    });
    const sealed = sealPayload(key, Buffer.from('x'), rowA);
    sealed[0] = 2;
    expect(thrown(() => openPayload(key, sealed, rowA)).message).toBe('sealed payload has version 2, want 1');
    expect(thrown(() => sealPayload(key.subarray(0, 16), Buffer.from('x'), rowA))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'dataKey has 16 bytes, want 32',
      field: 'dataKey',
    });
    expect(thrown(() => sealPayload(key, 'text' as unknown as Uint8Array, rowA)).field).toBe('plaintext');
    expect(thrown(() => openPayload(key, sealed, 'ad' as unknown as Uint8Array)).field).toBe('associatedData');
  });
});

describe('payloadAssociatedData', () => {
  it('is injective: parts are length-prefixed, not concatenated', () => {
    expect(payloadAssociatedData('ab', 'c').equals(payloadAssociatedData('a', 'bc'))).toBe(false);
    expect(payloadAssociatedData('a', '').equals(payloadAssociatedData('a'))).toBe(false);
    expect(encodeParts(['ab']).toString('hex')).toBe('000000026162');
  });
});
