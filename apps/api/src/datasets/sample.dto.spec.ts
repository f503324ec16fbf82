import { validateSample } from './sample.dto';

const shape = { features: 3, classes: 2 };

describe('validateSample', () => {
  it('accepts a well-formed sample and keeps only its fields', () => {
    expect(validateSample({ externalId: 'a', features: [1, -2.5, 0], label: 1 }, shape)).toEqual({
      sample: { externalId: 'a', features: [1, -2.5, 0], label: 1 },
    });
    expect(validateSample({ externalId: 'a', subjectId: 's', features: [1, 2, 3], label: 0 }, shape)).toEqual({
      sample: { externalId: 'a', subjectId: 's', features: [1, 2, 3], label: 0 },
    });
  });

  it.each([
    [null, 'a sample must be a JSON object', undefined],
    [[1, 2], 'a sample must be a JSON object', undefined],
    [{ features: [1, 2, 3], label: 0 }, 'externalId: must be a non-empty string', undefined],
    [{ externalId: 5, features: [1, 2, 3], label: 0 }, 'externalId: must be a non-empty string', undefined],
    [{ externalId: 'x'.repeat(201), features: [1, 2, 3], label: 0 }, 'externalId: longer than 200 characters', undefined],
    [{ externalId: 'a', subjectId: '', features: [1, 2, 3], label: 0 }, 'subjectId: must be a non-empty string of at most 200 characters', 'a'],
    [{ externalId: 'a', features: 'abc', label: 0 }, 'features: must be an array of numbers', 'a'],
    [{ externalId: 'a', features: [1, 2], label: 0 }, 'features: has 2 values, want 3', 'a'],
    [{ externalId: 'a', features: [1, null, 3], label: 0 }, 'features[1]: must be a finite number', 'a'],
    [{ externalId: 'a', features: [1, 2, Infinity], label: 0 }, 'features[2]: must be a finite number', 'a'],
    [{ externalId: 'a', features: [1, -1e39, 3], label: 0 }, 'features[1]: does not fit a 32-bit float (|value| ≤ 3.4e38)', 'a'],
    [{ externalId: 'a', features: [1, 2, 3], label: 2 }, 'label: must be an integer in [0, 2)', 'a'],
    [{ externalId: 'a', features: [1, 2, 3], label: -1 }, 'label: must be an integer in [0, 2)', 'a'],
    [{ externalId: 'a', features: [1, 2, 3], label: '1' }, 'label: must be an integer in [0, 2)', 'a'],
    [{ externalId: 'a', features: [1, 2, 3], label: 0, weight: 2 }, 'weight: unknown field', 'a'],
  ])('refuses %j: %s', (value, error, externalId) => {
    expect(validateSample(value, shape)).toEqual(externalId === undefined ? { error } : { error, externalId });
  });
});
