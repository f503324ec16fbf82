import { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { listenOnLoopback } from './api-data';
import { TestDatabase, createTestDatabase } from './database';
import { sharedTestKeyStore } from './key-store';

/** The HTTP service (no chain, no job worker) on a fresh database, listening on a free port of 127.0.0.1, with an ml key. */
export interface TestApi {
  db: TestDatabase;
  dataSource: DataSource;
  app: INestApplication;
  server: Server;
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  ml: string;
  close(): Promise<void>;
}

/** `env` is the service's environment on top of DATABASE_URL and ANCHORING=off (e.g. BODY_TIMEOUT_SECONDS). */
export async function startTestApi(prefix: string, env: Record<string, string> = {}): Promise<TestApi> {
  const db = await createTestDatabase(prefix);
  const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
  const app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off', ...env }), dataSource, ledger: new Ledger(dataSource) });
  const url = await listenOnLoopback(app);
  const server = app.getHttpServer() as Server;
  const port = Number(new URL(url).port);
  const ml = (await new ApiKeyService(dataSource).create('ml')).key;
  return {
    db,
    dataSource,
    app,
    server,
    url,
    port,
    ml,
    close: async () => {
      await app.close();
      await dataSource.destroy();
      await db.drop();
    },
  };
}
