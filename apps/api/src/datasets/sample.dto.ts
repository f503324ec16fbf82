import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CommittableSample } from '@lethe/ledger';
import { FEATURE_LIMIT } from '@lethe/unlearning';

export const MAX_EXTERNAL_ID_LENGTH = 200;
export const MAX_SUBJECT_ID_LENGTH = 200;

/** One sample as uploaded (a JSON array element or an NDJSON line). Checked by validateSample, per line. */
export class CreateSampleDto {
  @ApiProperty({ maxLength: MAX_EXTERNAL_ID_LENGTH, description: 'unique in the dataset' }) externalId!: string;
  @ApiProperty({ required: false, maxLength: MAX_SUBJECT_ID_LENGTH, description: 'the person the sample is about (forget by subject)' })
  subjectId?: string;
  @ApiProperty({ type: [Number], description: "exactly the dataset's number of features, all finite" }) features!: number[];
  @ApiProperty({ description: 'an integer in [0, classes)' }) label!: number;
  @ApiProperty({
    required: false,
    description: "when the sample expires (ISO-8601 date-time with Z or an offset, or a date): the retention sweep then files a forget request for it (reason 'retention')",
  })
  expiresAt?: string;
}

export class RejectedSampleDto {
  @ApiProperty({ description: '1-based line (NDJSON) or array position (JSON)' }) line!: number;
  @ApiProperty({ required: false }) externalId?: string;
  @ApiProperty({ description: 'what is wrong, naming the field' }) error!: string;
}

export class CommittedSampleDto {
  @ApiProperty() externalId!: string;
  @ApiProperty({ description: 'SHA-256(salt || canonical sample), lowercase hex: look it up at /v1/receipts/{commitment}' })
  commitment!: string;
}

export class SampleUploadResponseDto {
  @ApiProperty({ description: 'samples committed' }) accepted!: number;
  @ApiProperty({ description: 'lines rejected (all of them, also when `rejected` is cut short)' }) rejectedCount!: number;
  @ApiProperty({ type: [RejectedSampleDto], description: 'the first 1,000 rejected lines' }) rejected!: RejectedSampleDto[];
  @ApiProperty({ type: [CommittedSampleDto], description: 'in upload order' }) commitments!: CommittedSampleDto[];
  @ApiProperty({ type: [Number], description: 'indices of the SAMPLES_COMMITTED entries (one per chunk of up to 5,000 samples and 16 MiB)' })
  ledgerIndices!: number[];
  @ApiPropertyOptional({ description: 'the dataset version (DATASET_VERSIONED) that covers the upload; absent when nothing was committed' })
  datasetVersion?: number;
}

export type SampleCheck = { sample: CommittableSample } | { error: string; externalId?: string };

const SAMPLE_FIELDS = new Set(['externalId', 'subjectId', 'features', 'label', 'expiresAt']);

/** ISO-8601: a calendar date, or a date-time to the minute at least, with Z or an offset. */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** An ISO-8601 instant as toISOString writes it, or undefined when `value` is not one. */
export function parseIso8601(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = ISO_8601.exec(value);
  if (!match) return undefined;
  const [, year, month, day] = match;
  const time = Date.parse(value);
  // Date.parse takes 2027-02-31 (as March 3): the calendar date must be the one written.
  const check = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (Number.isNaN(time) || check.getUTCMonth() !== Number(month) - 1 || check.getUTCDate() !== Number(day)) return undefined;
  return new Date(time).toISOString();
}

/** Checks one uploaded value against the dataset's shape; the error names the field. */
export function validateSample(value: unknown, shape: { features: number; classes: number }): SampleCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a sample must be a JSON object' };
  const v = value as Record<string, unknown>;
  const externalId = typeof v.externalId === 'string' && v.externalId.length <= MAX_EXTERNAL_ID_LENGTH ? v.externalId : undefined;
  const fail = (error: string): SampleCheck => (externalId ? { error, externalId } : { error });
  for (const key of Object.keys(v)) if (!SAMPLE_FIELDS.has(key)) return fail(`${truncate(key)}: unknown field`);
  if (typeof v.externalId !== 'string' || v.externalId.length === 0) return fail('externalId: must be a non-empty string');
  if (v.externalId.length > MAX_EXTERNAL_ID_LENGTH) return fail(`externalId: longer than ${MAX_EXTERNAL_ID_LENGTH} characters`);
  if (v.subjectId !== undefined && (typeof v.subjectId !== 'string' || v.subjectId.length === 0 || v.subjectId.length > MAX_SUBJECT_ID_LENGTH))
    return fail(`subjectId: must be a non-empty string of at most ${MAX_SUBJECT_ID_LENGTH} characters`);
  if (!Array.isArray(v.features)) return fail('features: must be an array of numbers');
  if (v.features.length !== shape.features) return fail(`features: has ${v.features.length} values, want ${shape.features}`);
  for (let i = 0; i < v.features.length; i++) {
    const f = v.features[i];
    if (typeof f !== 'number' || !Number.isFinite(f)) return fail(`features[${i}]: must be a finite number`);
    // Models compute in float32: a larger value could only fail training later.
    if (Math.abs(f) > FEATURE_LIMIT) return fail(`features[${i}]: does not fit a 32-bit float (|value| ≤ 3.4e38)`);
  }
  if (typeof v.label !== 'number' || !Number.isInteger(v.label) || v.label < 0 || v.label >= shape.classes)
    return fail(`label: must be an integer in [0, ${shape.classes})`);
  const expiresAt = v.expiresAt === undefined ? undefined : parseIso8601(v.expiresAt);
  if (v.expiresAt !== undefined && expiresAt === undefined)
    return fail('expiresAt: must be an ISO-8601 date-time (2027-01-31T00:00:00Z, with Z or an offset) or date (2027-01-31)');
  const sample: CommittableSample = { externalId: v.externalId, features: v.features as number[], label: v.label };
  if (v.subjectId !== undefined) sample.subjectId = v.subjectId as string;
  if (expiresAt !== undefined) sample.expiresAt = expiresAt;
  return { sample };
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
