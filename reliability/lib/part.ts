// A part of the reliability suite: its flags (bench/lib/args.ts, so a bad value stops it naming the flag),
// and a run that returns what it found instead of throwing, so the suite reports every failure of every
// part, and the e2e tests under test/reliability assert that there are none.
import type { Bench, FlagSpecs } from '../../bench/lib/args';

export interface PartReport {
  part: string;
  /** Each failure found, precise enough to act on (a trial's seed, a request, an entry). */
  failures: string[];
  /** The figures of the run, as README's Reliability section states them. */
  summary: string[];
}

export interface Part<S extends FlagSpecs> extends Bench<S> {
  run(options: Parameters<Bench<S>['run']>[0]): Promise<PartReport>;
}

/** Writes a line of progress on stderr (stdout carries the report). */
export function progress(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items`, `concurrency` at a time. */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}
