import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { Ledger } from '@lethe/ledger';
import { configureHeapForTraining } from '@lethe/unlearning';
import { AppConfig, ConfigError, loadConfig } from './config/config';
import { openServiceKeyStoreOrExit } from './config/key-store';
import { embeddedInfoPath, openAppDatabase } from './database/database';
import { API_ENTITIES, apiMigrations } from './database/schema';
import { installLogger, runProcess } from './process-lifecycle';
import { startJobBoss } from './jobs/job.boss';
import { JobConfig, loadJobConfig } from './jobs/job.config';
import { createJobWorker } from './worker/worker.module';
import { openArtifacts } from './database/artifact-store';

/**
 * `npm run worker`: one more worker on the service's database (DATABASE_URL, or the embedded PostgreSQL
 * that `npm start` runs in the same DATA_DIR). It takes training and unlearning jobs from the pg-boss
 * queue until SIGINT/SIGTERM, then lets its running job finish (JOB_STOP_TIMEOUT_SECONDS) or hands it back.
 */
function readConfig(): { config: AppConfig; jobs: JobConfig; databaseUrl: string } {
  try {
    const config = loadConfig();
    const jobs = loadJobConfig();
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const info = embeddedInfoPath(config.dataDir);
      if (!existsSync(info))
        throw new ConfigError(
          'DATABASE_URL',
          `is not set and no service runs an embedded PostgreSQL in DATA_DIR ${config.dataDir} (start it with npm start)`,
        );
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
  configureHeapForTraining(); // a process that only trains: fewer full garbage collections for its whole life (see the function)
  const keyStore = await openServiceKeyStoreOrExit('lethe worker', config.dataDir, config.databaseUrl);
  installLogger(config.logLevel);
  const log = new Logger('Worker');
  await runProcess(
    log,
    async (onStop) => {
      const database = await openAppDatabase({
        databaseUrl,
        dataDir: config.dataDir,
        entities: API_ENTITIES,
        migrations: apiMigrations(async () => keyStore),
        keyStore: async () => keyStore,
      });
      onStop(() => database.close());
      onStop(async () => keyStore.close?.());
      log.log(`database: ${database.description}`);
      const artifacts = await openArtifacts(config, database.dataSource, (m) => log.log(m));
      onStop(() => artifacts.close());
      const boss = await startJobBoss(databaseUrl, jobs);
      onStop(() => boss.stop({ graceful: false }));
      const worker = await createJobWorker({
        boss,
        dataSource: database.dataSource,
        ledger: new Ledger(database.dataSource),
        keyStore,
        dataDir: config.dataDir,
        artifacts,
        config: jobs,
      });
      onStop(() => worker.stop());
      await worker.start();
    },
    'finishing or handing back running jobs',
  );
}

void main();
