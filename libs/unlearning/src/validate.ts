import { UnlearningError, UnlearningIssue, throwIssues } from './errors';
import { isHex32 } from './hash';
import { FEATURE_LIMIT, LabeledExample, Sample } from './samples';
import { TrainingConfig } from './config';

/** Checks each sample against the config; throws INVALID_SAMPLE listing every bad sample, DUPLICATE_SAMPLE on repeats. */
export function validateSamples(samples: readonly Sample[], config: Pick<TrainingConfig, 'numFeatures' | 'numClasses'>): void {
  if (!Array.isArray(samples)) throw new UnlearningError('INVALID_SAMPLE', 'samples must be an array');
  const issues: UnlearningIssue[] = [];
  samples.forEach((sample, index) => {
    const problem = describeSampleProblem(sample, config, true);
    if (problem)
      issues.push({ index, externalId: typeof sample?.externalId === 'string' ? sample.externalId : undefined, message: problem });
  });
  if (issues.length > 0) throwIssues('INVALID_SAMPLE', `${issues.length} invalid sample(s)`, issues.map(dropUndefined));
  const seenIds = new Set<string>();
  const seenCommitments = new Set<string>();
  const duplicates: UnlearningIssue[] = [];
  samples.forEach((sample, index) => {
    if (seenIds.has(sample.externalId))
      duplicates.push({ index, externalId: sample.externalId, message: `externalId ${sample.externalId} appears twice` });
    else if (seenCommitments.has(sample.commitment))
      duplicates.push({ index, externalId: sample.externalId, message: `commitment ${sample.commitment} appears twice` });
    seenIds.add(sample.externalId);
    seenCommitments.add(sample.commitment);
  });
  if (duplicates.length > 0) throwIssues('DUPLICATE_SAMPLE', `${duplicates.length} duplicate sample(s)`, duplicates);
}

/** Checks labeled examples without commitments (test sets, parsed uploads); throws INVALID_SAMPLE. */
export function validateExamples(examples: readonly LabeledExample[], config: Pick<TrainingConfig, 'numFeatures' | 'numClasses'>): void {
  if (!Array.isArray(examples)) throw new UnlearningError('INVALID_SAMPLE', 'examples must be an array');
  const issues: UnlearningIssue[] = [];
  examples.forEach((example, index) => {
    const problem = describeSampleProblem(example, config, false);
    if (problem) issues.push({ index, message: problem });
  });
  if (issues.length > 0) throwIssues('INVALID_SAMPLE', `${issues.length} invalid example(s)`, issues);
}

/** Returns why a sample is unusable, or undefined when it is fine. */
export function describeSampleProblem(
  sample: unknown,
  config: Pick<TrainingConfig, 'numFeatures' | 'numClasses'>,
  needsCommitment: boolean,
): string | undefined {
  if (sample === null || typeof sample !== 'object') return 'sample must be an object';
  const s = sample as Partial<Sample>;
  if (typeof s.externalId !== 'string' || s.externalId.length === 0) return 'externalId must be a non-empty string';
  if (needsCommitment && !isHex32(s.commitment)) return 'commitment must be 64 lowercase hex characters';
  if (!Array.isArray(s.features) && !(s.features instanceof Float32Array)) return 'features must be an array of numbers';
  if (s.features.length !== config.numFeatures) return `features has ${s.features.length} values, want ${config.numFeatures}`;
  for (let i = 0; i < s.features.length; i++) {
    const v = s.features[i];
    if (typeof v !== 'number') return `features[${i}] is not a number`;
    if (Number.isNaN(v)) return `features[${i}] is NaN`;
    if (!Number.isFinite(v)) return `features[${i}] is ${v}`;
    if (Math.abs(v) > FEATURE_LIMIT) return `features[${i}] = ${v} does not fit float32`;
  }
  if (typeof s.label !== 'number' || !Number.isInteger(s.label)) return `label must be an integer, got ${String(s.label)}`;
  if (s.label < 0 || s.label >= config.numClasses) return `label ${s.label} is out of range [0, ${config.numClasses - 1}]`;
  return undefined;
}

/**
 * Checks that the data can train the configured model: at least two classes, and at least
 * S x R samples so every slice can hold one on average. Throws INSUFFICIENT_DATA.
 */
export function checkEnoughData(samples: readonly Sample[], config: TrainingConfig): void {
  if (samples.length === 0) throw new UnlearningError('INSUFFICIENT_DATA', 'the dataset is empty');
  const first = samples[0].label;
  if (samples.every((s) => s.label === first)) throw new UnlearningError('INSUFFICIENT_DATA', `the dataset has only one class (${first})`);
  const needed = config.shards * config.slices;
  if (samples.length < needed) {
    throw new UnlearningError(
      'INSUFFICIENT_DATA',
      `${samples.length} samples cannot fill ${config.shards} shards x ${config.slices} slices (need at least ${needed})`,
    );
  }
}

function dropUndefined(issue: UnlearningIssue): UnlearningIssue {
  const out: UnlearningIssue = { message: issue.message };
  if (issue.index !== undefined) out.index = issue.index;
  if (issue.line !== undefined) out.line = issue.line;
  if (issue.externalId !== undefined) out.externalId = issue.externalId;
  return out;
}
