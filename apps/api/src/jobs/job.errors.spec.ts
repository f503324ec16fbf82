import { UnlearningError, validateSamples } from '@lethe/unlearning';
import { describeJobError, isPermanentJobError } from './job.errors';

describe('describeJobError', () => {
  it("keeps the engine's sample issues to their count and positions, never a value of a sample", () => {
    const samples = [
      { externalId: 'secret-external-id', commitment: 'ab'.repeat(32), features: [1, 7.654321e38], label: 0 },
      { externalId: 'secret-external-id', commitment: 'cd'.repeat(32), features: [1, 2], label: 0 },
    ];
    let error: unknown;
    try {
      validateSamples(samples, { numFeatures: 2, numClasses: 2 });
    } catch (e) {
      error = e;
    }
    // Positive control: the engine's own message names the value.
    expect((error as Error).message).toContain('7.654321e+38');
    const described = describeJobError(error);
    expect(described).toBe('INVALID_SAMPLE: 1 sample(s) refused (sample 0); their values are not shown');
    expect(isPermanentJobError(error)).toBe(true);
    expect(describeJobError(new UnlearningError('INSUFFICIENT_DATA', 'the dataset is empty'))).toBe('the dataset is empty');
    expect(describeJobError(new Error('boom'))).toBe('boom');
  });
});
