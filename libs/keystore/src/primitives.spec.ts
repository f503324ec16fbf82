// The standard algorithms against their published test vectors (testdata/, one JSON file per case), and the
// library's compositions against slow references written from the RFCs with nothing but HMAC.
import { createDecipheriv, createHmac } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSubKeys, lookupHash, payloadAssociatedData, sealPayload, SUB_KEY_LABELS } from './index';
import { computeHmacSha256, decryptAes256Gcm, deriveHkdfSha256, encryptAes256Gcm } from './primitives';

const TESTDATA = join(__dirname, 'testdata');
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
type Vector = Record<string, string | number> & { algorithm: string };
const vectors = readdirSync(TESTDATA)
  .filter((name) => name.endsWith('.json'))
  .map((name) => ({ name, vector: JSON.parse(readFileSync(join(TESTDATA, name), 'utf8')) as Vector }));

/** RFC 5869 section 2, from HMAC alone: extract, then expand T(1) || T(2) || ... */
function referenceHkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac('sha256', salt.length > 0 ? salt : Buffer.alloc(32)).update(ikm).digest();
  const blocks: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < length; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, info, Buffer.of(i)])).digest();
    blocks.push(t);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

describe('published test vectors', () => {
  it('finds a vector of each algorithm', () => {
    expect(new Set(vectors.map((v) => v.vector.algorithm))).toEqual(new Set(['AES-256-GCM', 'HKDF-SHA-256', 'HMAC-SHA-256']));
  });

  for (const { name, vector: v } of vectors) {
    it(name, () => {
      if (v.algorithm === 'AES-256-GCM') {
        const key = hex(v.key as string);
        const nonce = hex(v.nonce as string);
        const aad = hex(v.aad as string);
        const { ciphertext, tag } = encryptAes256Gcm(key, nonce, hex(v.plaintext as string), aad);
        expect(ciphertext.toString('hex')).toBe(v.ciphertext);
        expect(tag.toString('hex')).toBe(v.tag);
        expect(decryptAes256Gcm(key, nonce, ciphertext, tag, aad)?.toString('hex')).toBe(v.plaintext);
        const flipped = Buffer.from(tag);
        flipped[15] ^= 1;
        expect(decryptAes256Gcm(key, nonce, ciphertext, flipped, aad)).toBeUndefined();
        expect(decryptAes256Gcm(key, nonce, ciphertext, tag, Buffer.concat([aad, Buffer.of(0)]))).toBeUndefined();
        // A truncated tag is refused outright, never checked on its first bytes only.
        expect(() => decryptAes256Gcm(key, nonce, ciphertext, tag.subarray(0, 8), aad)).toThrow();
      } else if (v.algorithm === 'HKDF-SHA-256') {
        const args = [hex(v.ikm as string), hex(v.salt as string), hex(v.info as string), v.length as number] as const;
        expect(deriveHkdfSha256(...args).toString('hex')).toBe(v.okm);
        expect(referenceHkdf(...args).toString('hex')).toBe(v.okm);
      } else if (v.algorithm === 'HMAC-SHA-256') {
        expect(computeHmacSha256(hex(v.key as string), hex(v.data as string)).toString('hex')).toBe(v.mac);
      } else {
        throw new Error(`${name}: unknown algorithm ${v.algorithm}`);
      }
    });
  }
});

describe('compositions, against references built from the RFCs', () => {
  const master = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

  it('derives each sub-key by HKDF-SHA-256 with an empty salt and its own label', () => {
    const subKeys = deriveSubKeys(master);
    for (const [name, label] of Object.entries(SUB_KEY_LABELS)) {
      expect(subKeys[name as keyof typeof subKeys].toString('hex')).toBe(
        referenceHkdf(master, Buffer.alloc(0), Buffer.from(label), 32).toString('hex'),
      );
    }
    expect(new Set(Object.values(subKeys).map((k) => k.toString('hex'))).size).toBe(3);
  });

  it('hashes identifiers as HMAC-SHA-256 over length-prefixed label, domain and value', () => {
    const key = deriveSubKeys(master).lookupKey;
    const part = (s: string): Buffer => {
      const bytes = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    const message = Buffer.concat(['lethe/lookup/v1', 'externalId', 'ds-1', 'émile-7'].map(part));
    expect(lookupHash(key, ['externalId', 'ds-1'], 'émile-7')).toBe(createHmac('sha256', key).update(message).digest('hex'));
  });

  it('seals as version || nonce || AES-256-GCM ciphertext || tag, with the version byte in the associated data', () => {
    const key = deriveSubKeys(master).wrappingKey;
    const ad = payloadAssociatedData('ds-1', 'ab'.repeat(32));
    const sealed = sealPayload(key, Buffer.from('hello, GCM'), ad);
    expect(sealed[0]).toBe(1);
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13), { authTagLength: 16 });
    decipher.setAAD(Buffer.concat([Buffer.of(1), ad]));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]);
    expect(plaintext.toString()).toBe('hello, GCM');
  });
});
