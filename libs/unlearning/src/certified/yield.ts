/**
 * Lets a long computation on the main thread give the event loop a turn every `everyMs` (default 25 ms): a
 * worker that trains in the service process keeps answering HTTP and sending its job's heartbeats.
 */
export class Yielder {
  private last = Date.now();

  constructor(private readonly everyMs = 25) {}

  /** Resolves at once unless `everyMs` passed since the last turn; then after one turn of the event loop. */
  async maybeYield(): Promise<void> {
    const now = Date.now();
    if (now - this.last < this.everyMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = Date.now();
  }
}
