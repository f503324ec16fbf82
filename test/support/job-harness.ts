import { INestApplication } from '@nestjs/common';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { startJobBoss } from '../../apps/api/src/jobs/job.boss';
import { JobConfig } from '../../apps/api/src/jobs/job.config';
import { PgBossJobQueue } from '../../apps/api/src/jobs/job.queue';
import { JobWorker } from '../../apps/api/src/worker/job.worker';
import { createJobWorker } from '../../apps/api/src/worker/worker.module';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { ForgetRequestQueue, JobForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { TestDatabase, createTestDatabase } from './database';
import { FileKeyStore } from '@lethe/keystore';
import { KeyStoreMode, ServiceKeyStore, openServiceKeyStore } from '../../apps/api/src/config/key-store';
import { ArtifactStore, FileArtifactStore } from '@lethe/artifacts';
import { openArtifactStore } from '../../apps/api/src/database/artifact-store';

/**
 * A full retrain that takes seconds on iris: long enough for requests to arrive, or a worker to die, mid-pass
 * (6,000 epochs since training runs up to 256 steps per onnxruntime call: 800 took well under a second quiet).
 */
export const SLOW_FULL_RETRAIN = { method: 'full', architecture: { type: 'mlp', hidden: [32] }, epochs: 6000, batchSize: 4, learningRate: 0.01 };

/** Job settings that keep e2e tests quick: fast polling, quick expiry checks, short stops. */
export function testJobConfig(overrides: Partial<JobConfig> = {}): JobConfig {
  return {
    expireSeconds: 60,
    retryLimit: 3,
    retryDelaySeconds: 1,
    lostAfterSeconds: 4,
    pollSeconds: 1,
    maintenanceSeconds: 1,
    stopTimeoutSeconds: 5,
    serviceWorker: true,
    shardTasks: true,
    ...overrides,
  };
}

/** The service as `npm start` wires it (pg-boss queue, optionally an in-process worker) on a fresh database. */
export interface JobHarness {
  db: TestDatabase;
  /** DATA_DIR: checkpoints, ONNX files and the key store (keys/). */
  dataDir: string;
  keyStore: ServiceKeyStore;
  /** Where the service and its workers keep checkpoints and ONNX files (PostgreSQL, as with DATABASE_URL, unless asked otherwise). */
  artifacts: ArtifactStore;
  dataSource: DataSource;
  ledger: Ledger;
  boss: PgBoss;
  worker: JobWorker | null;
  app: INestApplication;
  ml: string;
  auditor: string;
  close(): Promise<void>;
}

export async function startJobHarness(
  prefix: string,
  options: {
    worker?: boolean;
    jobs?: Partial<JobConfig>;
    forgetRequestQueue?: ForgetRequestQueue;
    env?: Record<string, string>;
    artifactStore?: 'files' | 'postgres';
    /** Where the data keys are (KEY_STORE): `files` (DATA_DIR/keys, the default here) or `postgres` (the database, as with DATABASE_URL). */
    keyStore?: KeyStoreMode;
  } = {},
): Promise<JobHarness> {
  const db = await createTestDatabase(prefix);
  const dataDir = mkdtempSync(join(tmpdir(), `lethe-${prefix}-`));
  const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
  const ledger = new Ledger(dataSource);
  const jobs = testJobConfig(options.jobs);
  const boss = await startJobBoss(db.url, jobs);
  const queue = new PgBossJobQueue(boss);
  const keyStore: ServiceKeyStore = await openServiceKeyStore(dataDir, { KEY_STORE: options.keyStore ?? 'files' }, db.url);
  const config = loadConfig({ ...options.env, DATABASE_URL: db.url, ANCHORING: 'off', DATA_DIR: dataDir, ARTIFACT_STORE: options.artifactStore });
  const artifacts = openArtifactStore(config.artifacts, dataDir, db.url);
  const app = await createApp({
    keyStore,
    config,
    artifacts,
    dataSource,
    ledger,
    jobQueue: queue,
    forgetRequestQueue: options.forgetRequestQueue ?? new JobForgetRequestQueue(queue),
  });
  await app.init();
  // After the app: its logger setting (none in tests) also silences Nest's start-up lines of the worker's container.
  const worker = options.worker === false ? null : await createJobWorker({ boss, dataSource, ledger, keyStore, dataDir, artifacts, config: jobs });
  await worker?.start();
  const keys = new ApiKeyService(dataSource);
  const ml = (await keys.create('ml')).key;
  const auditor = (await keys.create('auditor')).key;
  return {
    db,
    dataDir,
    keyStore,
    artifacts,
    dataSource,
    ledger,
    boss,
    worker,
    app,
    ml,
    auditor,
    close: async () => {
      await app.close();
      if (worker) await worker.stop();
      await boss.stop({ graceful: false });
      await artifacts.close();
      await keyStore.close?.();
      await dataSource.destroy();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Starts another worker on the harness's database, queue and data directory (a second process's, in effect). */
export async function startAnotherWorker(h: JobHarness, jobs: Partial<JobConfig> = {}): Promise<JobWorker> {
  const worker = await createJobWorker({
    boss: h.boss,
    dataSource: h.dataSource,
    ledger: h.ledger,
    keyStore: h.keyStore,
    dataDir: h.dataDir,
    artifacts: h.artifacts,
    config: testJobConfig(jobs),
  });
  await worker.start();
  return worker;
}

/**
 * `npm run worker` as a separate process on the harness's database and data directory, with job settings
 * that keep tests quick; resolves once it takes jobs. `onOutput` sees everything it prints.
 */
export function startWorkerProcess(
  h: JobHarness,
  env: Record<string, string> = {},
  onOutput?: (text: string) => void,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-r', './scripts/register.js', 'apps/api/src/worker.ts'], {
    cwd: join(__dirname, '..', '..'),
    env: {
      ...process.env,
      DATABASE_URL: h.db.url,
      DATA_DIR: h.dataDir,
      ARTIFACT_STORE: h.artifacts instanceof FileArtifactStore ? 'files' : 'postgres',
      KEY_STORE: h.keyStore instanceof FileKeyStore ? 'files' : 'postgres',
      JOB_EXPIRE_SECONDS: '600',
      JOB_RETRY_LIMIT: '50',
      JOB_RETRY_DELAY_SECONDS: '1',
      JOB_POLL_SECONDS: '1',
      JOB_MAINTENANCE_SECONDS: '1',
      JOB_LOST_AFTER_SECONDS: '4',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      onOutput?.(chunk.toString());
      if (output.includes('takes jobs')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`worker exited with ${code} before starting: ${output}`)));
  });
}
