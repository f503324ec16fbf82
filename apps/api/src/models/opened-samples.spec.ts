import { OpenedSamples } from './opened-samples';
import type { Sample } from '@lethe/unlearning';

const sample = (i: number, batch?: number): Sample => ({
  externalId: `e${i}`,
  features: Float32Array.of(i, i + 0.5),
  label: i % 3,
  commitment: `c${i}`,
  ...(batch === undefined ? {} : { batch }),
});

describe('OpenedSamples', () => {
  it('finds held samples in the order asked, as the vault opens them (no learn batch), sharing their features', () => {
    const opened = new OpenedSamples();
    const samples = [sample(0), sample(1, 2), sample(2)];
    opened.hold(samples);
    const found = opened.find(['c2', 'c0', 'c1'])!;
    expect(found.map((s) => s.commitment)).toEqual(['c2', 'c0', 'c1']);
    expect(found[2]).toEqual({ externalId: 'e1', features: samples[1].features, label: 1, commitment: 'c1' });
    expect(found[0].features).toBe(samples[2].features);
  });

  it('finds nothing unless every commitment is held', () => {
    const opened = new OpenedSamples();
    opened.hold([sample(0), sample(1)]);
    expect(opened.find(['c0', 'c9'])).toBeUndefined();
    expect(opened.find([])).toEqual([]);
  });

  it('keeps a sample while any holder holds it, and nothing once the last lets go (a second release does nothing)', () => {
    const opened = new OpenedSamples();
    const first = opened.hold([sample(0), sample(1)]);
    const second = opened.hold([sample(1), sample(2)]);
    first();
    first();
    expect(opened.find(['c0'])).toBeUndefined();
    expect(opened.find(['c1', 'c2'])?.length).toBe(2);
    second();
    expect(opened.find(['c1'])).toBeUndefined();
    expect(opened.find(['c2'])).toBeUndefined();
  });
});
