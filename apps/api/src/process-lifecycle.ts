import { ConsoleLogger, Logger } from '@nestjs/common';
import { LogLevel } from './config/config';

const LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** Routes Nest's logger, and so every Logger, to the console at LOG_LEVEL. */
export function installLogger(level: LogLevel): ConsoleLogger {
  const logger = new ConsoleLogger('Lethe', { logLevels: LEVELS.slice(0, LEVELS.indexOf(level) + 1) });
  Logger.overrideLogger(logger);
  return logger;
}

/**
 * Starts a process's parts in order and stops them in reverse: on a start-up failure (exit 1) or on
 * SIGINT/SIGTERM (exit 0). `start` registers each part's stop with `onStop` as soon as it runs.
 *
 * The signal handlers are installed before `start` runs: a signal that arrives while the process is still
 * starting (the service answers on its port before its worker has started) is kept, and once `start` has
 * ended the parts started are stopped and the process exits 0. Before, such a signal was lost: the embedded
 * PostgreSQL's own listener (stopsOnSignals) kept Node from exiting on it, and nothing else acted, so the
 * process ran on until it was killed.
 */
export async function runProcess(
  log: Logger,
  start: (onStop: (stop: () => Promise<void>) => void) => Promise<void>,
  stoppingMessage = 'shutting down',
): Promise<void> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => log.error(`while stopping: ${(e as Error).message}`));
  };
  let starting = true;
  let stopping = false;
  let signalled: string | undefined;
  const stopAndExit = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.log(`${signal}: ${stoppingMessage}`);
    await stopAll();
    log.log('stopped');
    process.exit(0);
  };
  const onSignal = (signal: string) => {
    if (starting) signalled ??= signal;
    else void stopAndExit(signal);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    await start((stop) => stops.push(stop));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (signalled !== undefined) {
      // Stopped while starting: the failure may come from the stop itself (a part the same signal reached).
      log.warn(`${signalled} while starting; the start ended with: ${message}`);
      starting = false;
      return stopAndExit(signalled);
    }
    log.error(`failed to start: ${message}`);
    await stopAll();
    process.exit(1);
  }
  starting = false;
  if (signalled !== undefined) await stopAndExit(signalled);
}
