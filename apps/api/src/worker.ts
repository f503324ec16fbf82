import 'reflect-metadata';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { Ledger } from '@lethe/ledger';
import { AppConfig, ConfigError, LogLevel, loadConfig } from './config/config';
import { embeddedInfoPath, openAppDatabase } from './database/database';
import { API_ENTITIES, API_MIGRATIONS } from './database/schema';
import { startJobBoss } from './jobs/job.boss';
import { JobConfig, loadJobConfig } from './jobs/job.config';
import { JobWorker } from './jobs/job.worker';

/**
 * `npm run worker`: one more worker on the service's database (DATABASE_URL, or the embedded PostgreSQL
 * that `npm start` runs in the same DATA_DIR). It takes training and unlearning jobs from the pg-boss
 * queue until SIGINT/SIGTERM, then lets its running job finish (JOB_STOP_TIMEOUT_SECONDS) or hands it back.
 */
const LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

function readConfig(): { config: AppConfig; jobs: JobConfig; databaseUrl: string } {
  try {
    const config = loadConfig();
    const jobs = loadJobConfig();
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const info = embeddedInfoPath(config.dataDir);
      if (!existsSync(info))
        throw new ConfigError('DATABASE_URL', `is not set and no service runs an embedded PostgreSQL in DATA_DIR ${config.dataDir} (start it with npm start)`);
      databaseUrl = (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url;
    }
    return { config, jobs, databaseUrl };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`lethe worker: bad configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const { config, jobs, databaseUrl } = readConfig();
  const logger = new ConsoleLogger('Lethe', { logLevels: LEVELS.slice(0, LEVELS.indexOf(config.logLevel) + 1) });
  Logger.overrideLogger(logger);
  const log = new Logger('Worker');
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((e) => log.error(`while stopping: ${(e as Error).message}`));
  };
  try {
    const database = await openAppDatabase({ databaseUrl, dataDir: config.dataDir, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    cleanups.push(() => database.close());
    log.log(`database: ${database.description}`);
    const boss = await startJobBoss(databaseUrl, jobs);
    cleanups.push(() => boss.stop({ graceful: false }));
    const worker = new JobWorker(boss, { dataSource: database.dataSource, ledger: new Ledger(database.dataSource), dataDir: config.dataDir, config: jobs });
    cleanups.push(() => worker.stop());
    await worker.start();
  } catch (error) {
    log.error(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
    await cleanUp();
    process.exit(1);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.log(`${signal}: finishing or handing back running jobs`);
    await cleanUp();
    log.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

void main();
