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
  /**
   * What actually happened, counted as it happened (trials run, kills delivered, cases answered, faults
   * injected): a run that did less than asked is not a pass (checkCounts), so a small run cannot pass vacuously.
   */
  counts: Record<string, number>;
}

/** Failures for each count below its least acceptable value (`least`), naming both. */
export function checkCounts(report: PartReport, least: Record<string, number>): string[] {
  return Object.entries(least)
    .filter(([name, min]) => !((report.counts[name] ?? 0) >= min))
    .map(([name, min]) => `${report.part}: ${name} is ${report.counts[name] ?? 0}, expected at least ${min}`);
}

export interface Part<S extends FlagSpecs> extends Bench<S> {
  run(options: Parameters<Bench<S>['run']>[0]): Promise<PartReport>;
  /** The least each count must reach for a run of these options to pass (run.ts checks it with checkCounts). */
  least(options: Parameters<Bench<S>['run']>[0]): Record<string, number>;
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
