import { INestApplication } from '@nestjs/common';
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
import { JobWorker } from '../../apps/api/src/jobs/job.worker';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { ForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { JobForgetRequestQueue } from '../../apps/api/src/unlearning/unlearning.queue';
import { TestDatabase, createTestDatabase } from './database';

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
    ...overrides,
  };
}

/** The service as `npm start` wires it (pg-boss queue, optionally an in-process worker) on a fresh database. */
export interface JobHarness {
  db: TestDatabase;
  dataDir: string;
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
  options: { worker?: boolean; jobs?: Partial<JobConfig>; forgetRequestQueue?: ForgetRequestQueue } = {},
): Promise<JobHarness> {
  const db = await createTestDatabase(prefix);
  const dataDir = mkdtempSync(join(tmpdir(), `lethe-${prefix}-`));
  const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
  const ledger = new Ledger(dataSource);
  const jobs = testJobConfig(options.jobs);
  const boss = await startJobBoss(db.url, jobs);
  const queue = new PgBossJobQueue(boss);
  const worker = options.worker === false ? null : new JobWorker(boss, { dataSource, ledger, dataDir, config: jobs });
  const app = await createApp({
    config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off', DATA_DIR: dataDir }),
    dataSource,
    ledger,
    jobQueue: queue,
    forgetRequestQueue: options.forgetRequestQueue ?? new JobForgetRequestQueue(queue),
  });
  await app.init();
  await worker?.start();
  const keys = new ApiKeyService(dataSource);
  const ml = (await keys.create('ml')).key;
  const auditor = (await keys.create('auditor')).key;
  return {
    db,
    dataDir,
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
      await dataSource.destroy();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `read` until `done` holds or `timeoutMs` passes (then fails with the last value). */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
