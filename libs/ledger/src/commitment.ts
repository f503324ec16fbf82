import canonicalize from 'canonicalize';
import { createHash, randomBytes } from 'node:crypto';
import { LedgerError } from '@lethe/events';

export const SALT_BYTES = 32;

/** A training sample as it is committed to: the fields that define it, nothing else. */
export interface CommittableSample {
  externalId: string;
  features: number[];
  label: number;
  subjectId?: string;
  /**
   * When the sample expires (ISO-8601): the retention sweep then files a forget request for it. Not part of the
   * commitment nor of the sealed payload; stored beside the payload and erased with it.
   */
  expiresAt?: string;
}

/** A fresh random 32-byte salt. Salts never enter the log; destroying one unlinks its commitment. */
export function createSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** The bytes committed to: RFC 8785 canonical JSON of the sample. */
export function canonicalizeSample(sample: CommittableSample): Buffer {
  const { externalId, features, label, subjectId } = sample;
  if (features.some((f) => !Number.isFinite(f)))
    throw new LedgerError('INVALID_ARGUMENT', 'features must be finite numbers', 'features');
  const text = canonicalize(subjectId === undefined ? { externalId, features, label } : { externalId, features, label, subjectId });
  if (text === undefined) throw new LedgerError('INVALID_ARGUMENT', 'sample cannot be canonicalized');
  return Buffer.from(text, 'utf8');
}

/** SHA-256(salt || canonical sample), as lowercase hex. */
export function commitSample(salt: Uint8Array, sample: CommittableSample): string {
  if (salt.length !== SALT_BYTES)
    throw new LedgerError('INVALID_ARGUMENT', `salt has ${salt.length} bytes, want ${SALT_BYTES}`, 'salt');
  return createHash('sha256').update(salt).update(canonicalizeSample(sample)).digest('hex');
}
