// The service's log lines, captured while a test step runs (the harnesses mute them otherwise).
import { Logger } from '@nestjs/common';

/** Runs `step` with every Nest log line (each argument as text, JSON for objects) pushed to the array it gets; mutes them again after. */
export async function withLogLines(step: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const capture = (...args: unknown[]) => void lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  Logger.overrideLogger({ log: capture, error: capture, warn: capture, debug: capture, verbose: capture, fatal: capture });
  try {
    await step(lines);
  } finally {
    Logger.overrideLogger(false);
  }
}

/**
 * The needles that some of `texts` hold (in the needles' order), each as a whole token: not followed by a letter,
 * digit, `_` or `-`, so that `s-1` is not found inside `s-14` (identifiers that extend one another).
 */
export function foundIn(texts: string[], needles: string[]): string[] {
  return needles.filter((n) => {
    const token = new RegExp(`${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`);
    return texts.some((t) => token.test(t));
  });
}
