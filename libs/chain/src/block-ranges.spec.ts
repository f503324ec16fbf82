import { blockRanges } from './block-ranges';

/** Every block of the ranges, in the order they are visited. */
function blocksOf(ranges: Iterable<{ fromBlock: number; toBlock: number }>): number[] {
  const blocks: number[] = [];
  for (const r of ranges) {
    const inRange = Array.from({ length: r.toBlock - r.fromBlock + 1 }, (_, i) => r.fromBlock + i);
    blocks.push(...inRange);
  }
  return blocks;
}

describe('blockRanges', () => {
  it('covers every block once, within the bounds, in ranges of at most `size` blocks, both ways', () => {
    for (let from = 0; from < 6; from++) {
      for (let to = from; to < 20; to++) {
        for (let size = 1; size < 8; size++) {
          const up = [...blockRanges(from, to, size)];
          const down = [...blockRanges(from, to, size, 'descending')];
          const all = Array.from({ length: to - from + 1 }, (_, i) => from + i);
          expect(blocksOf(up)).toEqual(all);
          expect(blocksOf([...down].reverse())).toEqual(all); // newest range first
          for (const r of [...up, ...down]) expect(r.toBlock - r.fromBlock + 1).toBeLessThanOrEqual(size);
          expect(up).toHaveLength(Math.ceil(all.length / size));
        }
      }
    }
  });

  it('starts with the newest blocks when descending, so a recent event costs one call', () => {
    expect([...blockRanges(0, 9, 4, 'descending')]).toEqual([
      { fromBlock: 6, toBlock: 9 },
      { fromBlock: 2, toBlock: 5 },
      { fromBlock: 0, toBlock: 1 },
    ]);
    expect([...blockRanges(0, 9, 4)]).toEqual([
      { fromBlock: 0, toBlock: 3 },
      { fromBlock: 4, toBlock: 7 },
      { fromBlock: 8, toBlock: 9 },
    ]);
  });

  it('yields nothing for an empty span and refuses a size below 1 or a negative block', () => {
    expect([...blockRanges(5, 4, 10)]).toEqual([]);
    expect(() => [...blockRanges(0, 4, 0)]).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => [...blockRanges(-1, 4, 2)]).toThrow(/fromBlock/);
  });
});
