import 'reflect-metadata';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { createApp } from './app';
import { ConfigError, LogLevel, loadConfig } from './config/config';
import { openAppDatabase } from './database/database';

const LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`lethe: bad configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = new ConsoleLogger('Lethe', { logLevels: LEVELS.slice(0, LEVELS.indexOf(config.logLevel) + 1) });
  Logger.overrideLogger(logger);
  const log = new Logger('Main');

  const database = await openAppDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    embeddedPostgresPort: config.embeddedPostgresPort,
    log: (m) => log.log(m),
  });
  log.log(`database: ${database.description}`);

  const app = await createApp({ config, dataSource: database.dataSource, logger });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.log(`${signal}: shutting down`);
    try {
      await app.close();
    } finally {
      await database.close();
      log.log('stopped');
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    await app.listen(config.port, config.host);
  } catch (error) {
    log.error(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
    await app.close();
    await database.close();
    process.exit(1);
  }
  log.log(`listening on http://${config.host}:${config.port} (API under /v1, OpenAPI at /docs)`);
}

main().catch((error) => {
  process.stderr.write(`lethe: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
