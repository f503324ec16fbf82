export type ProgressPhase = 'train' | 'unlearn' | 'publish' | 'evaluate' | 'reference' | 'membership';

export interface Progress {
  /** Done fraction in [0, 1] of the current run: a training, an unlearning, or the reference retrain of a forget request (each restarts at 0). */
  fraction: number;
  /** Estimated seconds left, from the rate so far; null until there is a rate. */
  etaSeconds: number | null;
  phase: ProgressPhase;
}

export type ProgressCallback = (progress: Progress) => void;

/** Turns counted work units (optimizer steps) into throttled progress reports. */
export class ProgressTracker {
  private done = 0;
  private readonly started = process.hrtime.bigint();
  private lastReport = -1;

  constructor(
    private readonly total: number,
    private readonly callback: ProgressCallback | undefined,
    private phase: ProgressPhase,
  ) {}

  setPhase(phase: ProgressPhase): void {
    this.phase = phase;
    this.emit(true);
  }

  advance(units = 1): void {
    this.done = Math.min(this.total, this.done + units);
    this.emit(false);
  }

  /** Work done up to `fraction` of the total (it never goes back): for work counted elsewhere, e.g. by other workers. */
  reach(fraction: number): void {
    this.done = Math.max(this.done, Math.min(this.total, fraction * this.total));
    this.emit(false);
  }

  finish(): void {
    this.done = this.total;
    this.emit(true);
  }

  private emit(force: boolean): void {
    if (!this.callback) return;
    const fraction = this.total === 0 ? 1 : this.done / this.total;
    // Report at most every 1% of the work, plus phase changes and the end.
    if (!force && fraction - this.lastReport < 0.01) return;
    this.lastReport = fraction;
    const elapsed = Number(process.hrtime.bigint() - this.started) / 1e9;
    const etaSeconds = fraction > 0 && fraction < 1 ? (elapsed / fraction) * (1 - fraction) : fraction >= 1 ? 0 : null;
    this.callback({ fraction, etaSeconds, phase: this.phase });
  }
}
