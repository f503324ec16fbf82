import { createHash } from 'node:crypto';
import { computeBatchRoot, computeSampleBatchRoot, keepShiftedTree } from './batch-root';

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

  it("derived from a kept tree (a removal's survivors), gives computeBatchRoot's root for every size and removed position, chained", () => {
    const root = (batch: readonly { commitment: string }[]) => computeBatchRoot(batch.map((s) => s.commitment));
    for (let n = 1; n <= 40; n++) {
      const samples = Array.from({ length: n }, (_, i) => ({ commitment: commitment(1000 * n + i) }));
      expect(computeSampleBatchRoot(samples, { keepTree: true })).toBe(root(samples));
      for (let removed = 0; removed < n; removed++) {
        const survivors = samples.filter((_, i) => i !== removed);
        expect(computeSampleBatchRoot(survivors, { derivedFrom: samples, keepTree: true })).toBe(root(survivors));
        // And a removal from the survivors, derived from their kept tree.
        const fewer = survivors.filter((_, i) => i !== Math.floor(survivors.length / 2));
        expect(computeSampleBatchRoot(fewer, { derivedFrom: survivors })).toBe(root(fewer));
      }
      // Several removed at once, and a batch that is not a removal from the earlier one (another sample first).
      const several = samples.filter((_, i) => i % 3 !== 1);
      expect(computeSampleBatchRoot(several, { derivedFrom: samples })).toBe(root(several));
      const other = [{ commitment: commitment(-n) }, ...samples.slice(1)];
      expect(computeSampleBatchRoot(other, { derivedFrom: samples })).toBe(root(other));
    }
  });

  it("with the kept shifted tree, gives computeBatchRoot's root for every size and single removed position, chained, and falls back for other batches", () => {
    const root = (batch: readonly { commitment: string }[]) => computeBatchRoot(batch.map((s) => s.commitment));
    for (let n = 1; n <= 40; n++) {
      const samples = Array.from({ length: n }, (_, i) => ({ commitment: commitment(3000 * n + i) }));
      computeSampleBatchRoot(samples, { keepTree: true });
      keepShiftedTree(samples);
      for (let removed = 0; removed < n; removed++) {
        const survivors = samples.filter((_, i) => i !== removed);
        expect(computeSampleBatchRoot(survivors, { derivedFrom: samples, keepTree: true })).toBe(root(survivors));
        // The survivors' tree (made from the two kept trees) serves their own removals, with and without its shifted tree.
        const fewer = survivors.filter((_, i) => i !== Math.floor(survivors.length / 3));
        expect(computeSampleBatchRoot(fewer, { derivedFrom: survivors })).toBe(root(fewer));
        keepShiftedTree(survivors);
        for (const position of [0, Math.floor(survivors.length / 2), survivors.length - 1]) {
          const chained = survivors.filter((_, i) => i !== position);
          expect(computeSampleBatchRoot(chained, { derivedFrom: survivors })).toBe(root(chained));
        }
      }
      // Not a single removal: two removed, one replaced, one added, the batch itself.
      const two = samples.filter((_, i) => i !== 1 && i !== n - 1);
      expect(computeSampleBatchRoot(two, { derivedFrom: samples })).toBe(root(two));
      const replaced = [...samples.slice(0, n - 1)].map((s, i) => (i === Math.floor(n / 2) ? { commitment: commitment(-3000 * n) } : s));
      expect(computeSampleBatchRoot(replaced, { derivedFrom: samples })).toBe(root(replaced));
      const added = [...samples, { commitment: commitment(-3001 * n) }];
      expect(computeSampleBatchRoot(added, { derivedFrom: samples })).toBe(root(added));
      expect(computeSampleBatchRoot(samples.slice(), { derivedFrom: samples })).toBe(root(samples));
    }
  });

  it('does not trust a kept shifted tree for samples changed since it was kept (a commitment after the removed position)', () => {
    const root = (batch: readonly { commitment: string }[]) => computeBatchRoot(batch.map((s) => s.commitment));
    const samples = Array.from({ length: 29 }, (_, i) => ({ commitment: commitment(8000 + i) }));
    computeSampleBatchRoot(samples, { keepTree: true });
    keepShiftedTree(samples);
    const survivors = samples.filter((_, i) => i !== 5);
    const before = computeSampleBatchRoot(survivors, { derivedFrom: samples });
    samples[20].commitment = commitment(9000); // changed after its trees were kept (never done by the engine)
    const after = computeSampleBatchRoot(survivors, { derivedFrom: samples });
    expect(after).toBe(root(survivors));
    expect(after).not.toBe(before); // control: the change is in the survivors' root
  });

  it('does not trust a kept tree for samples changed since it was kept (the batch array or a commitment)', () => {
    const root = (batch: readonly { commitment: string }[]) => computeBatchRoot(batch.map((s) => s.commitment));
    const samples = Array.from({ length: 33 }, (_, i) => ({ commitment: commitment(5000 + i) }));
    computeSampleBatchRoot(samples, { keepTree: true });
    const original = samples.slice();
    samples[4] = { commitment: commitment(6000) }; // the array changed in place after its tree was kept
    const survivors = samples.filter((_, i) => i !== 20);
    expect(computeSampleBatchRoot(survivors, { derivedFrom: samples })).toBe(root(survivors));
    // Control: derived from the array as it was, the same survivors' root differs (the kept tree is original's).
    expect(computeSampleBatchRoot(original.filter((_, i) => i !== 20), { derivedFrom: samples })).toBe(root(original.filter((_, i) => i !== 20)));
    expect(root(original.filter((_, i) => i !== 20))).not.toBe(root(survivors));
    original[2].commitment = commitment(7000); // a sample object's commitment changed (never done by the engine)
    const again = original.filter((_, i) => i !== 30);
    computeSampleBatchRoot(original, { keepTree: true });
    original[1].commitment = commitment(7001);
    expect(computeSampleBatchRoot(again, { derivedFrom: original })).toBe(root(again));
  });
});
