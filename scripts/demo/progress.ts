import { Presets, SingleBar } from 'cli-progress';

/** A progress bar on stdout, drawn only in a terminal (elsewhere the step's summary line says it all). */
export interface ProgressBar {
  update(value: number, payload?: Record<string, string>): void;
  stop(): void;
}

/**
 * `format` is a cli-progress format (`{bar}`, `{percentage}`, `{value}`, `{total}`, `{eta_formatted}` and
 * the payload's names); the bar starts at 0 of `total` and is indented like the demo's other lines.
 */
export function createProgressBar(format: string, total: number, payload: Record<string, string> = {}): ProgressBar {
  if (!process.stdout.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({ format: `      ${format}`, stream: process.stdout, hideCursor: true, etaBuffer: 50 }, Presets.shades_classic);
  bar.start(total, 0, payload);
  let stopped = false;
  return {
    update(value, more) {
      if (!stopped) bar.update(value, more);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
