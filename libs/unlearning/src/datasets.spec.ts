import { loadIris, loadMnist, splitTrainTest } from './datasets';

describe('built-in datasets', () => {
  it('loads the 150 iris flowers with labels 0..2', () => {
    const iris = loadIris();
    expect(iris).toHaveLength(150);
    expect(iris[0]).toEqual({ externalId: 'iris-000', features: [5.1, 3.5, 1.4, 0.2], label: 0 });
    expect(new Set(iris.map((s) => s.label))).toEqual(new Set([0, 1, 2]));
  });

  it('reads MNIST digits by index, the same every time', () => {
    const a = loadMnist({ perDigit: 3 });
    const b = loadMnist({ perDigit: 3 });
    expect(a).toHaveLength(30);
    expect(a).toEqual(b);
    expect(a[0].externalId).toBe('mnist-0-0000');
    expect(a[29]).toMatchObject({ externalId: 'mnist-9-0002', label: 9 });
    expect(a[0].features).toHaveLength(784);
    expect(Math.max(...a[0].features)).toBeLessThanOrEqual(1);
  });

  it('splits by seed and ids only: disjoint, complete, independent of order', () => {
    const iris = loadIris();
    const split = splitTrainTest(iris, { seed: 's', testFraction: 0.2 });
    expect(split.test).toHaveLength(30);
    expect(split.train).toHaveLength(120);
    const reversed = splitTrainTest([...iris].reverse(), { seed: 's', testFraction: 0.2 });
    expect(new Set(reversed.test.map((s) => s.externalId))).toEqual(new Set(split.test.map((s) => s.externalId)));
    const other = splitTrainTest(iris, { seed: 't', testFraction: 0.2 });
    expect(other.test.map((s) => s.externalId)).not.toEqual(split.test.map((s) => s.externalId));
    expect(() => splitTrainTest(iris, { seed: 's', testFraction: 1 })).toThrow(/testFraction/);
  });
});
