import { LruMap } from './lru';

describe('LruMap', () => {
  it('drops the least recently used entry past its capacity, telling onEvict', () => {
    const evicted: string[] = [];
    const map = new LruMap<string, number>(2, (key) => evicted.push(key));
    map.set('a', 1);
    map.set('b', 2);
    expect(map.get('a')).toBe(1); // a is now the most recent
    map.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(map.get('b')).toBeUndefined();
    expect([map.get('a'), map.get('c'), map.size]).toEqual([1, 3, 2]);
    map.clear();
    expect(evicted.sort()).toEqual(['a', 'b', 'c']);
    expect(map.size).toBe(0);
  });

  it('grows when asked, never shrinks', () => {
    const map = new LruMap<number, number>(1);
    map.reserve(3);
    map.reserve(2);
    [1, 2, 3].forEach((k) => map.set(k, k));
    expect([map.capacity, map.size, map.get(1)]).toEqual([3, 3, 1]);
  });

  it('evicts one entry on request, and settled() waits for releases that onEvict returns as promises', async () => {
    const released: string[] = [];
    const map = new LruMap<string, number>(1, async (key) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      released.push(key);
    });
    map.set('a', 1);
    map.set('b', 2); // evicts a, released in 20 ms
    expect(map.evict('b')).toBe(true);
    expect(map.evict('b')).toBe(false);
    expect([map.size, released]).toEqual([0, []]);
    await map.settled();
    expect(released.sort()).toEqual(['a', 'b']);
    map.set('c', 3);
    expect(map.delete('c')).toBe(true); // delete does not release
    await map.settled();
    expect(released).toHaveLength(2);
  });

  it('lists its keys least recently used first, without marking any as used', () => {
    const lru = new LruMap<string, number>(3);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3);
    lru.get('a');
    expect(lru.keys()).toEqual(['b', 'c', 'a']);
    lru.set('d', 4); // b, the least recently used, goes: listing the keys did not touch it
    expect(lru.keys()).toEqual(['c', 'a', 'd']);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
  });
});
