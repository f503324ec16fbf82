/**
 * The chunks of `source`, failing with `timeoutError()` when one is awaited for longer than `ms`: the
 * time the consumer spends between chunks (committing what it read) does not count, only the silence of
 * the sender. The chunk still awaited is left behind; its stream is closed with the connection.
 */
export async function* readWithIdleTimeout<T>(source: AsyncIterable<T>, ms: number, timeoutError: () => Error): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeoutError()), ms)));
    const next = await Promise.race([iterator.next(), silence]).finally(() => clearTimeout(timer));
    if (next.done) return;
    yield next.value;
  }
}
