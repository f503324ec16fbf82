/** Wall-clock seconds per named phase, measured lap by lap (a phase may recur; its laps add up). */
export class PhaseClock {
  private last = process.hrtime.bigint();
  readonly seconds: { [phase: string]: number } = {};

  /** Charges the time since the previous lap (or the clock's start) to `phase`. */
  lap(phase: string): void {
    const now = process.hrtime.bigint();
    this.seconds[phase] = (this.seconds[phase] ?? 0) + Number(now - this.last) / 1e9;
    this.last = now;
  }

  /** Seconds charged to `phase` so far (0 if none). */
  of(phase: string): number {
    return this.seconds[phase] ?? 0;
  }
}
