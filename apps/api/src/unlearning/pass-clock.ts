import { PhaseClock } from '@lethe/unlearning';

/**
 * Where an unlearning pass's time went, for its job's result (GET /v1/jobs/:id): when its worker received it,
 * when the new version of each model became the one served, and wall-clock seconds per phase, the engine's
 * own phases under `engine.<phase>` (the forget) and `evidence.<phase>` (its evidence, measured after publication). Times only: no sample, identifier or evidence.
 */
export interface PassTimings {
  /** When the worker received the job (before it took the job and waited for the dataset). */
  receivedAt: string;
  /** When each model's new version was recorded, that is, served (GET /v1/models/:id, predict). */
  servedAt: { [modelId: string]: string };
  seconds: { [phase: string]: number };
}

export class PassClock {
  private readonly clock = new PhaseClock();
  private readonly served: { [modelId: string]: string } = {};

  /** Made when the worker receives the job: the first lap counts from here. */
  private readonly receivedAt = new Date();

  lap(phase: string): void {
    this.clock.lap(phase);
  }

  /** Adds the engine's phases of one call (their sum is the lap of the call), under `prefix`. */
  addEngine(phases: { [phase: string]: number }, prefix = 'engine.'): void {
    for (const [phase, seconds] of Object.entries(phases)) {
      const key = `${prefix}${phase}`;
      this.clock.seconds[key] = (this.clock.seconds[key] ?? 0) + seconds;
    }
  }

  /** The model's new version is recorded: served from now on. */
  servedNow(modelId: string): void {
    this.served[modelId] = new Date().toISOString();
  }

  toJson(): PassTimings {
    const seconds: { [phase: string]: number } = {};
    for (const [phase, value] of Object.entries(this.clock.seconds)) seconds[phase] = Math.round(value * 1e4) / 1e4;
    return { receivedAt: this.receivedAt.toISOString(), servedAt: { ...this.served }, seconds };
  }
}
