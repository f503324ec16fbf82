import 'reflect-metadata';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { ChainConnector } from '@lethe/chain';
import { KeyStore } from '@lethe/keystore';
import { redactRpcUrl } from '@lethe/redact';
import type { ArtifactStore } from '@lethe/artifacts';
import { Ledger } from '@lethe/ledger';
import type { DataSource } from 'typeorm';
import { AnchoringLoop } from './anchoring/anchoring-loop';
import { remoteChainConnector, startLocalChain } from './anchoring/chain-connection';
import { createApp } from './app';
import { AppConfig, ConfigError, loadConfig } from './config/config';
import { openServiceKeyStoreOrExit } from './config/key-store';
import { openArtifacts } from './database/artifact-store';
import { openAppDatabase } from './database/database';
import { API_ENTITIES, apiMigrations } from './database/schema';
import { installLogger, runProcess } from './process-lifecycle';
import { startJobBoss } from './jobs/job.boss';
import { JobConfig, loadJobConfig } from './jobs/job.config';
import { PgBossJobQueue } from './jobs/job.queue';
import { JobWorker } from './worker/job.worker';
import { createJobWorker } from './worker/worker.module';
import { AdminKeyConfigError, ApiKeyService, readAdminKeyFromEnv } from './keys/api-key.service';
import { JobForgetRequestQueue } from './forget-requests/forget-request.queue';

function readConfig(): AppConfig & { adminKey?: string; jobs: JobConfig } {
  try {
    return { ...loadConfig(), adminKey: readAdminKeyFromEnv(), jobs: loadJobConfig() };
  } catch (error) {
    if (error instanceof ConfigError || error instanceof AdminKeyConfigError) {
      process.stderr.write(`lethe: bad configuration: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

type OnStop = (stop: () => Promise<void>) => void;

async function main(): Promise<void> {
  const { adminKey, jobs, ...config } = readConfig();
  // Before anything else: a wrong or malformed master key stops the start having changed nothing.
  const keyStore = await openServiceKeyStoreOrExit('lethe', config.dataDir, config.databaseUrl);
  const logger = installLogger(config.logLevel);
  const log = new Logger('Main');

  await runProcess(
    log,
    async (onStop) => {
      const database = await openAppDatabase({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        embeddedPostgresPort: config.embeddedPostgresPort,
        entities: API_ENTITIES,
        migrations: apiMigrations(async () => keyStore),
        keyStore: async () => keyStore,
        log: (m) => log.log(m),
        stopsOnSignals: true,
      });
      onStop(() => database.close());
      onStop(async () => keyStore.close?.());
      log.log(`database: ${database.description}`);
      await ensureAdminKey(database.dataSource, adminKey);
      const ledger = new Ledger(database.dataSource);
      const artifacts = await openArtifacts(config, database.dataSource, (m) => log.log(m));
      onStop(() => artifacts.close());
      const loop = await startAnchoring(config, database.dataSource, ledger, log, onStop);
      const { jobQueue, worker } = await startJobs(config, jobs, database.dataSource, ledger, keyStore, artifacts, onStop);
      const app = await createApp({
        artifacts,
        config,
        dataSource: database.dataSource,
        ledger,
        keyStore,
        jobQueue,
        forgetRequestQueue: new JobForgetRequestQueue(jobQueue),
        anchoringLoop: loop,
        healthReporters: loop ? [loop] : [],
        logger,
      });
      onStop(() => app.close());
      await app.listen(config.port, config.host);
      loop?.start();
      await worker?.start();
      log.log(`listening on http://${config.host}:${config.port} (API under /v1, OpenAPI at /docs)`);
    },
    'shutting down',
  );
}

/** The first admin key: LETHE_ADMIN_KEY, or one generated when there is no admin key yet, printed this once. */
async function ensureAdminKey(dataSource: DataSource, adminKey: string | undefined): Promise<void> {
  const admin = await new ApiKeyService(dataSource).ensureAdminKey(adminKey);
  if (admin?.generatedKey !== undefined) {
    // Straight to stdout, not through the logger: shown this once, and never written anywhere else.
    process.stdout.write(
      `\nFirst admin API key (shown this once; store it now): ${admin.generatedKey}\n` +
        `Use it as "Authorization: Bearer <key>" to create keys: POST /v1/keys {"role": "ml"}, or npm run cli -- keys create --role ml\n\n`,
    );
  }
}

/** The anchoring loop on RPC_URL's chain, or on a local Hardhat node started here; null with ANCHORING=off. Not started yet. */
async function startAnchoring(
  config: AppConfig,
  dataSource: DataSource,
  ledger: Ledger,
  log: Logger,
  onStop: OnStop,
): Promise<AnchoringLoop | null> {
  if (!config.chain.enabled) {
    log.warn('ANCHORING=off: checkpoints are not anchored on any chain');
    return null;
  }
  let connect: ChainConnector;
  if (config.chain.rpcUrl === undefined) {
    const local = await startLocalChain(config.chain, (m) => log.log(m), { pidFile: join(config.dataDir, 'hardhat-node.pid') });
    onStop(() => local.stop());
    connect = local.connect;
  } else {
    connect = remoteChainConnector(config.chain);
    log.log(`anchoring on ${redactRpcUrl(config.chain.rpcUrl)} at ${config.chain.contractAddress}`);
  }
  const loop = new AnchoringLoop(dataSource, ledger, connect, {
    everyEntries: config.chain.anchorEveryEntries,
    everySeconds: config.chain.anchorEverySeconds,
    confirmations: config.chain.anchorConfirmations,
    replaceAfterSeconds: config.chain.anchorReplaceAfterSeconds,
    pollMs: config.chain.rpcUrl === undefined ? 250 : 2000,
  });
  onStop(() => loop.stop());
  return loop;
}

/**
 * Training and unlearning jobs: a pg-boss queue in the same database, shared with `npm run worker` processes,
 * and this process's own worker unless SERVICE_WORKER=off (not started yet).
 */
async function startJobs(
  config: AppConfig,
  jobs: JobConfig,
  dataSource: DataSource,
  ledger: Ledger,
  keyStore: KeyStore,
  artifacts: ArtifactStore,
  onStop: OnStop,
): Promise<{ jobQueue: PgBossJobQueue; worker: JobWorker | null }> {
  const boss = await startJobBoss((dataSource.options as { url: string }).url, jobs);
  onStop(() => boss.stop({ graceful: false }));
  const jobQueue = new PgBossJobQueue(boss);
  if (!jobs.serviceWorker) return { jobQueue, worker: null };
  const worker = await createJobWorker({ boss, dataSource, ledger, keyStore, dataDir: config.dataDir, artifacts, config: jobs });
  onStop(() => worker.stop());
  return { jobQueue, worker };
}

void main();
