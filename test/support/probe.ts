// Polling until something holds: the one way tests wait for another process or a job. The default deadlines
// are for a loaded machine (they bound a wait for something that does happen, never a claim about speed).

/**
 * Calls `probe` every 200 ms until it gives a value (a throw counts as not yet) and returns it; fails naming
 * `what` after `timeoutMs`. For services started in another process, which refuse connections at first.
 */
export async function probeUntil<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls `read` every 250 ms until `done` holds and returns that value; fails with the last value after `timeoutMs`. */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
