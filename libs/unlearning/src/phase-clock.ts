/**
 * Wall-clock seconds per named phase, measured lap by lap (a phase may recur; its laps add up), and the process's
 * CPU seconds (user + system, every thread) over the same laps: on a shared machine the steadier reading.
 */
export class PhaseClock {
  private last = process.hrtime.bigint();
  private lastCpu = process.cpuUsage();
  readonly seconds: { [phase: string]: number } = {};
  readonly cpuSeconds: { [phase: string]: number } = {};

  /** Charges the time since the previous lap (or the clock's start) to `phase`. */
  lap(phase: string): void {
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    this.seconds[phase] = (this.seconds[phase] ?? 0) + Number(now - this.last) / 1e9;
    this.cpuSeconds[phase] = (this.cpuSeconds[phase] ?? 0) + (cpu.user - this.lastCpu.user + cpu.system - this.lastCpu.system) / 1e6;
    this.last = now;
    this.lastCpu = cpu;
  }

  /** Seconds charged to `phase` so far (0 if none). */
  of(phase: string): number {
    return this.seconds[phase] ?? 0;
  }
}
