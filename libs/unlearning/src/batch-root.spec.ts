import { createHash } from 'node:crypto';
import { computeBatchRoot, computeSampleBatchRoot } from './batch-root';

const commitment = (i: number) => createHash('sha256').update(`c${i}`).digest('hex');

describe('batch roots of samples', () => {
  it('equals computeBatchRoot of the commitments in order, for every size, and again after removals (leaf hashes kept per sample)', () => {
    const samples = Array.from({ length: 37 }, (_, i) => ({ commitment: commitment(i) }));
    for (let n = 0; n <= samples.length; n++) {
      const some = samples.slice(0, n);
      expect(computeSampleBatchRoot(some)).toBe(computeBatchRoot(some.map((s) => s.commitment)));
    }
    const survivors = samples.filter((_, i) => i % 7 !== 3);
    expect(computeSampleBatchRoot(survivors)).toBe(computeBatchRoot(survivors.map((s) => s.commitment)));
    // A sample object whose commitment differs from the cached one (never done by the engine) is hashed afresh.
    const changed = { ...samples[0] };
    computeSampleBatchRoot([changed]);
    changed.commitment = commitment(99);
    expect(computeSampleBatchRoot([changed])).toBe(computeBatchRoot([commitment(99)]));
  });
});
