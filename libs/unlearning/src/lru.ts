/**
 * A Map that keeps at most `capacity` entries, dropping the least recently used (a Map iterates in insertion
 * order, so a hit re-inserts its key). `onEvict` lets a cache release what an entry holds; a release that takes
 * time returns its promise, and `settled()` waits for every release started so far (a release handles its own
 * errors: nothing else sees them unless `settled()` is awaited).
 * Not the `lru-cache` package the service uses for API keys and rate limits, because its users need what that
 * package does not do: raise the capacity of a live cache (`reserve`, the engine's caches sized to the
 * ensemble in use; lru-cache's `max` is fixed at construction), drop an entry without releasing it (`delete`,
 * a failed load or a state released elsewhere; lru-cache's `dispose` runs on every delete) beside dropping it
 * with its release (`evict`), and wait for asynchronous releases (`settled`; lru-cache's `dispose` returns
 * nothing it waits for).
 */
export class LruMap<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly releasing = new Set<Promise<unknown>>();

  constructor(private limit: number, private readonly onEvict?: (key: K, value: V) => unknown) {
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
    while (this.entries.size > this.limit) this.evict(this.entries.keys().next().value as K);
  }

  /** Removes an entry without telling `onEvict` (what it holds is released elsewhere, or holds nothing). */
  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Removes an entry and calls `onEvict` for it; false when there was none. */
  evict(key: K): boolean {
    if (!this.entries.has(key)) return false;
    const value = this.entries.get(key)!;
    this.entries.delete(key);
    const released = this.onEvict?.(key, value);
    if (released instanceof Promise) {
      this.releasing.add(released);
      const done = () => this.releasing.delete(released);
      released.then(done, done);
    }
    return true;
  }

  /** Removes every entry, calling `onEvict` for each. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.evict(key);
  }

  /** Resolves once every release that `onEvict` started so far has ended. */
  async settled(): Promise<void> {
    await Promise.all(this.releasing);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The keys, least recently used first (reading them marks none as used). */
  keys(): K[] {
    return [...this.entries.keys()];
  }
}
