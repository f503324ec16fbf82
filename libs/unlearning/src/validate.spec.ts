import { normalizeConfig, hashHyperparameters } from './config';
import { UnlearningError } from './errors';
import { checkEnoughData, validateSamples } from './validate';
import { commitExample, irisSisaConfig } from './testing/factories';

const shape = { numFeatures: 3, numClasses: 4 };
const good = (i: number) => commitExample({ externalId: `s${i}`, features: [i, 1, 2], label: i % 4 });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof UnlearningError) return error.code;
    throw error;
  }
  return undefined;
}

describe('validateSamples', () => {
  it('accepts good samples', () => {
    expect(codeOf(() => validateSamples([good(0), good(1)], shape))).toBeUndefined();
  });

  it.each([
    ['NaN feature', { features: [NaN, 1, 2] }, 'features[0] is NaN'],
    ['Infinity feature', { features: [1, Infinity, 2] }, 'features[1] is Infinity'],
    ['too few features', { features: [1, 2] }, 'features has 2 values, want 3'],
    ['label out of range', { label: 4 }, 'label 4 is out of range [0, 3]'],
    ['negative label', { label: -1 }, 'label -1 is out of range [0, 3]'],
    ['fractional label', { label: 1.5 }, 'label must be an integer, got 1.5'],
    ['bad commitment', { commitment: 'ABC' }, 'commitment must be 64 lowercase hex characters'],
    ['empty externalId', { externalId: '' }, 'externalId must be a non-empty string'],
  ])('refuses a %s with INVALID_SAMPLE naming the sample', (_, change, message) => {
    const samples = [good(0), { ...good(1), ...change }];
    try {
      validateSamples(samples, shape);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(UnlearningError);
      expect((error as UnlearningError).code).toBe('INVALID_SAMPLE');
      expect((error as UnlearningError).issues).toEqual([expect.objectContaining({ index: 1, message })]);
    }
  });

  it('refuses repeated externalIds and commitments with DUPLICATE_SAMPLE', () => {
    expect(codeOf(() => validateSamples([good(0), good(0)], shape))).toBe('DUPLICATE_SAMPLE');
    expect(codeOf(() => validateSamples([good(0), { ...good(1), commitment: good(0).commitment }], shape))).toBe('DUPLICATE_SAMPLE');
  });
});

describe('checkEnoughData', () => {
  const config = normalizeConfig({ ...irisSisaConfig(), numFeatures: 3, numClasses: 4, shards: 2, slices: 2 });

  it('refuses an empty dataset, a one-class dataset, and fewer samples than S x R', () => {
    expect(codeOf(() => checkEnoughData([], config))).toBe('INSUFFICIENT_DATA');
    expect(codeOf(() => checkEnoughData([good(0), good(4), good(8), good(12)], config))).toBe('INSUFFICIENT_DATA');
    expect(codeOf(() => checkEnoughData([good(0), good(1), good(2)], config))).toBe('INSUFFICIENT_DATA');
    expect(codeOf(() => checkEnoughData([good(0), good(1), good(2), good(3)], config))).toBeUndefined();
  });
});

describe('normalizeConfig', () => {
  it.each([
    ['zero shards', { shards: 0 }],
    ['fractional epochs', { epochs: 1.5 }],
    ['negative learning rate', { learningRate: -1 }],
    ['NaN learning rate', { learningRate: NaN }],
    ['hidden layers on logistic regression', { hiddenLayers: [4] }],
    ['an mlp without hidden layers', { model: 'mlp' }],
    ['one class', { numClasses: 1 }],
    ['an unknown method', { method: 'magic' }],
    ['an unknown aggregation', { aggregation: 'median' }],
    ['zero threads', { threads: 0 }],
    ['negative weight decay', { weightDecay: -0.1 }],
  ])('refuses %s with INVALID_CONFIG', (_, change) => {
    expect(codeOf(() => normalizeConfig({ ...irisSisaConfig(), ...(change as object) }))).toBe('INVALID_CONFIG');
  });

  it('fills defaults and hashes equal configs equally', () => {
    const config = normalizeConfig({ ...irisSisaConfig(), seed: 42 });
    expect(config).toMatchObject({ hiddenLayers: [], aggregation: 'mean', threads: 1, seed: '42' });
    expect(hashHyperparameters(config)).toBe(hashHyperparameters(normalizeConfig({ ...irisSisaConfig(), seed: '42' })));
    expect(hashHyperparameters(config)).not.toBe(hashHyperparameters(normalizeConfig({ ...irisSisaConfig(), seed: '43' })));
    expect(hashHyperparameters(config)).toMatch(/^[0-9a-f]{64}$/);
  });
});
