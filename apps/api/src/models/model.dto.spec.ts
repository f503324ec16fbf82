import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { normalizeConfig } from '@lethe/unlearning';
import { DatasetEntity } from '../datasets/dataset.entity';
import { CreateModelDto, epochsPerSliceOf, evaluationSettingsOf, toEngineConfig } from './model.dto';

const valid = {
  datasetId: '00000000-0000-4000-8000-000000000000',
  method: 'sisa',
  shards: 3,
  slices: 2,
  architecture: { type: 'mlp', hidden: [16, 8] },
  epochs: 5,
  batchSize: 8,
  learningRate: 0.05,
  seed: 42,
};

function problems(body: object): string[] {
  return validateSync(plainToInstance(CreateModelDto, body)).flatMap((e) => [e.property, ...(e.children ?? []).map((c) => `${e.property}.${c.property}`)]);
}

describe('CreateModelDto', () => {
  it('accepts a full SISA body, with a string or integer seed', () => {
    expect(problems(valid)).toEqual([]);
    expect(problems({ ...valid, seed: 'run-1' })).toEqual([]);
  });

  it('accepts privacy {epsilon, delta, clipNorm} with either accountant or none', () => {
    expect(problems({ ...valid, privacy: { epsilon: 2, delta: 1e-5, clipNorm: 1 } })).toEqual([]);
    expect(problems({ ...valid, privacy: { epsilon: 0.5, delta: 1e-6, clipNorm: 0.1, accountant: 'pld' } })).toEqual([]);
  });

  it('accepts an evaluation with a holdout in [0, 0.5] and a boolean referenceRetrain, or an empty one', () => {
    expect(problems({ ...valid, evaluation: { holdoutFraction: 0.5, referenceRetrain: false } })).toEqual([]);
    expect(problems({ ...valid, evaluation: { holdoutFraction: 0 } })).toEqual([]);
    expect(problems({ ...valid, evaluation: {} })).toEqual([]);
  });

  it('accepts a membership attack with shadow models in [4, 256] and canaries 0 or in [100, 1000], or its defaults', () => {
    for (const membership of [{}, { shadowModels: 4 }, { shadowModels: 256, canaries: 1000 }, { canaries: 0 }, { canaries: 100 }])
      expect(problems({ ...valid, evaluation: { membership } })).toEqual([]);
  });

  it.each([
    [{ shadowModels: 3 }, 'shadowModels must be an integer in [4, 256]'],
    [{ shadowModels: 257 }, 'shadowModels must be an integer in [4, 256]'],
    [{ shadowModels: 8.5 }, 'shadowModels must be an integer in [4, 256]'],
    [{ shadowModels: '16' }, 'shadowModels must be an integer in [4, 256]'],
    [{ shadowModels: null }, 'shadowModels must be an integer in [4, 256]'],
    [{ canaries: 99 }, 'canaries must be 0 or an integer in [100, 1000]'],
    [{ canaries: 1001 }, 'canaries must be 0 or an integer in [100, 1000]'],
    [{ canaries: -100 }, 'canaries must be 0 or an integer in [100, 1000]'],
  ])('refuses evaluation.membership %j, naming the field', (membership, message) => {
    const [error] = validateSync(plainToInstance(CreateModelDto, { ...valid, evaluation: { membership } }));
    const membershipError = error.children!.find((c) => c.property === 'membership')!;
    expect(Object.values(membershipError.children![0].constraints!)).toEqual([message]);
  });

  it.each([
    [{ seed: 1.5 }, 'seed'],
    [{ seed: 's'.repeat(201) }, 'seed'],
    [{ learningRate: 0 }, 'learningRate'],
    [{ learningRate: 101 }, 'learningRate'],
    [{ architecture: { type: 'mlp', hidden: [0] } }, 'architecture.hidden'],
    [{ architecture: { type: 'mlp', hidden: [] } }, 'architecture.hidden'],
    [{ slices: 4097 }, 'slices'],
    [{ method: 'full-retrain' }, 'method'],
    [{ evaluation: { holdoutFraction: 0.7 } }, 'evaluation.holdoutFraction'],
    [{ evaluation: { holdoutFraction: '0.2' } }, 'evaluation.holdoutFraction'],
    [{ evaluation: { holdoutFraction: null } }, 'evaluation.holdoutFraction'],
    [{ evaluation: { referenceRetrain: 'yes' } }, 'evaluation.referenceRetrain'],
    [{ evaluation: 'x' }, 'evaluation'],
    [{ evaluation: { membership: 16 } }, 'evaluation.membership'],
    [{ epochsPerSlice: 0 }, 'epochsPerSlice'],
    [{ epochsPerSlice: 2.5 }, 'epochsPerSlice'],
    [{ epochsPerSlice: '3' }, 'epochsPerSlice'],
    [{ epochsPerSlice: 10001 }, 'epochsPerSlice'],
    [{ privacy: { epsilon: 0, delta: 1e-5, clipNorm: 1 } }, 'privacy.epsilon'],
    [{ privacy: { epsilon: 1, delta: -1, clipNorm: 1 } }, 'privacy.delta'],
    [{ privacy: { epsilon: 1, delta: 1e-5, clipNorm: 0 } }, 'privacy.clipNorm'],
    [{ privacy: { epsilon: 1, delta: 1e-5 } }, 'privacy.clipNorm'],
    [{ privacy: { epsilon: 1, delta: 1e-5, clipNorm: 1, accountant: 'gdp' } }, 'privacy.accountant'],
    [{ privacy: 'on' }, 'privacy'],
  ])('refuses %j, naming %s', (overrides, field) => {
    expect(problems({ ...valid, ...overrides })).toContain(field);
  });
});

describe('toEngineConfig', () => {
  const dataset = { id: valid.datasetId, features: 4, classes: 3 } as DatasetEntity;

  it("maps the API's names onto the engine's config, with the dataset's shape", () => {
    const config = normalizeConfig(toEngineConfig(plainToInstance(CreateModelDto, valid), dataset));
    expect(config).toMatchObject({ method: 'sisa', model: 'mlp', hiddenLayers: [16, 8], numFeatures: 4, numClasses: 3, shards: 3, slices: 2, seed: '42' });
  });

  it("resolves SISA's schedule unless epochsPerSlice is given", () => {
    expect(normalizeConfig(toEngineConfig(plainToInstance(CreateModelDto, valid), dataset)).epochsPerSlice).toEqual([3, 3]); // a = 10/3
    expect(normalizeConfig(toEngineConfig(plainToInstance(CreateModelDto, { ...valid, epochsPerSlice: 2 }), dataset)).epochsPerSlice).toEqual([2, 2]);
  });

  it('maps full and logreg, leaving S and R to their defaults', () => {
    const body = plainToInstance(CreateModelDto, { ...valid, method: 'full', architecture: { type: 'logreg' }, shards: undefined, slices: undefined });
    expect(normalizeConfig(toEngineConfig(body, dataset))).toMatchObject({ method: 'full-retrain', model: 'logistic-regression', hiddenLayers: [], shards: 1, slices: 1 });
  });
});

describe('epochsPerSliceOf', () => {
  const stored = { method: 'sisa', model: 'mlp', hiddenLayers: [4], numFeatures: 4, numClasses: 3, shards: 2, slices: 3, epochs: 5, batchSize: 8, learningRate: 0.1, seed: 1 };

  it('reads the schedule a model was stored with', () => {
    expect(epochsPerSliceOf({ ...stored, epochsPerSlice: [2, 3, 3] })).toEqual([2, 3, 3]);
  });

  it('gives a model stored before the field `epochs` on every slice, as it trained', () => {
    expect(epochsPerSliceOf(stored)).toEqual([5, 5, 5]);
  });
});

describe('evaluationSettingsOf', () => {
  it('fills in the defaults: no holdout, no reference retrain, no membership attack', () => {
    const none = { holdoutFraction: 0, referenceRetrain: false, membership: null };
    expect(evaluationSettingsOf({})).toEqual(none);
    expect(evaluationSettingsOf({ evaluation: null })).toEqual(none);
    expect(evaluationSettingsOf({ evaluation: { referenceRetrain: true } })).toEqual({ ...none, referenceRetrain: true });
    expect(evaluationSettingsOf({ evaluation: { holdoutFraction: 0.2 } })).toEqual({ ...none, holdoutFraction: 0.2 });
  });

  it('gives an asked-for membership attack 16 shadow models and no canaries unless told otherwise', () => {
    expect(evaluationSettingsOf({ evaluation: { membership: {} } }).membership).toEqual({ shadowModels: 16, canaries: 0 });
    expect(evaluationSettingsOf({ evaluation: { membership: { shadowModels: 8, canaries: 500 } } }).membership).toEqual({ shadowModels: 8, canaries: 500 });
  });
});
