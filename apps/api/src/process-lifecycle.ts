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
  try {
    await start((stop) => stops.push(stop));
  } catch (error) {
    log.error(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
    await stopAll();
    process.exit(1);
  }
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.log(`${signal}: ${stoppingMessage}`);
    await stopAll();
    log.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void onSignal('SIGINT'));
  process.on('SIGTERM', () => void onSignal('SIGTERM'));
}
