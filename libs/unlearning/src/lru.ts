/**
 * A Map that keeps at most `capacity` entries, dropping the least recently used (a Map iterates in insertion
 * order, so a hit re-inserts its key). Hand-rolled because it is a dozen lines and the engine's caches need
 * nothing else; `onEvict` lets a cache release what an entry holds.
 */
export class LruMap<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private limit: number, private readonly onEvict?: (key: K, value: V) => void) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`capacity must be a positive integer, got ${limit}`);
  }

  get capacity(): number {
    return this.limit;
  }

  /** Raises the capacity to at least `capacity` (a cache scanned in a loop longer than its capacity never hits). */
  reserve(capacity: number): void {
    this.limit = Math.max(this.limit, capacity);
  }

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.limit) {
      const [oldest, dropped] = this.entries.entries().next().value as [K, V];
      this.entries.delete(oldest);
      this.onEvict?.(oldest, dropped);
    }
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Removes every entry, calling `onEvict` for each. */
  clear(): void {
    const all = [...this.entries];
    this.entries.clear();
    for (const [key, value] of all) this.onEvict?.(key, value);
  }

  get size(): number {
    return this.entries.size;
  }
}
