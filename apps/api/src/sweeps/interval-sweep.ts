import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';

/**
 * A sweep the service runs once at start and then every `everyMs` (a timer that does not keep the process
 * alive); a failed run is a warning naming it, and the next tick runs again. Stopping the module waits for the
 * run in progress.
 */
export abstract class IntervalSweep implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  /** The logger its warnings go to, and what a failed run is called in them ("sweep", "lifecycle sweep"). */
  protected constructor(
    protected readonly logger: Logger,
    private readonly what: string,
  ) {}

  /** How long between runs (read at start). */
  protected abstract get everyMs(): number;

  /** One run. */
  abstract sweep(): Promise<unknown>;

  onApplicationBootstrap(): void {
    const run = () => {
      this.running = this.sweep().catch((e: unknown) => this.logger.warn(`${this.what} failed: ${(e as Error).message}`));
    };
    setImmediate(run);
    this.timer = setInterval(run, this.everyMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
