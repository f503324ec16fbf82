import { INestApplication, Logger } from '@nestjs/common';
import { listenOnLoopback } from '../../support/api-data';
import { Client } from 'pg';
import { CompactRange } from '@lethe/merkle';
import { randomBytes } from 'node:crypto';
import { AnchoringPolicy, HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { AnchoringLoop } from '../../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../../apps/api/src/anchoring/chain-connection';
import { createApp } from '../../../apps/api/src/app';
import { loadConfig } from '../../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../../apps/api/src/database/schema';
import type { ChainFixture } from '../../contracts/support/chain-fixture';
import { TestDatabase, createTestDatabase } from '../../support/database';
import { buildEvents } from '../../support/factories';
import { sharedTestKeyStore } from '../../support/key-store';

const POLICY: AnchoringPolicy = { everyEntries: 5, everySeconds: 3600, confirmations: 1, replaceAfterSeconds: 3600, pollMs: 50 };

/** The honest log every test starts from: 18 entries, anchored at sizes 7 and 14 (ANCHORED at 7 and 14). */
export const HONEST = { treeSize: 18, anchoredSizes: [7, 14], anchoredIndices: [7, 14] };

/**
 * Builds the honest log in a database that tests then copy (CREATE DATABASE ... TEMPLATE), anchoring it on
 * `chain` with the service's own AnchoringLoop. Every copy has the same anchors on the same chain.
 */
export async function buildAnchoredLog(chain: ChainFixture): Promise<TestDatabase> {
  Logger.overrideLogger(false);
  const db = await createTestDatabase('verifier_tpl');
  const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
  const ledger = new Ledger(dataSource);
  const key = HARDHAT_DEV_PRIVATE_KEYS[1]; // the fixture's anchorer
  const config = loadConfig({ RPC_URL: chain.node.rpcUrl, CONTRACT_ADDRESS: chain.client.address, ANCHORER_PRIVATE_KEY: key });
  const loop = new AnchoringLoop(dataSource, ledger, remoteChainConnector(config.chain, { ANCHORER_PRIVATE_KEY: key }), POLICY);
  try {
    await ledger.append(buildEvents(0, 7));
    await loop.tick(); // sends the anchor of size 7
    await loop.tick(); // confirms it, appends ANCHORED (index 7)
    await ledger.append(buildEvents(7, 6));
    await loop.tick();
    await loop.tick(); // anchors size 14, ANCHORED at index 14
    await ledger.append(buildEvents(13, 3));
    const { treeSize } = await ledger.getCheckpoint();
    if (treeSize !== HONEST.treeSize) throw new Error(`the honest log has ${treeSize} entries, want ${HONEST.treeSize}`);
  } finally {
    await loop.stop();
    await dataSource.destroy();
  }
  return db;
}

/** A copy of `template`; connections still open on it (a pool closing in the background) are ended first. */
export async function cloneDatabase(template: TestDatabase): Promise<TestDatabase> {
  const source = new URL(template.url);
  const name = `verifier_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [
      source.pathname.slice(1),
    ]);
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${source.pathname.slice(1)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(template.url);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: process.env.TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Runs SQL on `db` as an operator with superuser rights would: append-only triggers off. */
export async function tamper(db: TestDatabase, ...statements: [string, unknown[]?][]): Promise<void> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('SET session_replication_role = replica');
    for (const [sql, params] of statements) await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** What a careful forger does after changing entries: the head recomputed from the entries as they now are. */
export async function recomputeHead(db: TestDatabase): Promise<void> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  const rows: { leaf_hash: Buffer }[] = (await client.query(`SELECT leaf_hash FROM ledger_entries ORDER BY idx`)).rows;
  await client.end();
  const range = CompactRange.empty();
  range.append(rows.map((r) => new Uint8Array(r.leaf_hash)));
  await tamper(db, [`UPDATE ledger_head SET tree_size = $1, root_hash = $2`, [String(range.size), Buffer.from(range.root())]]);
}

export interface RunningService {
  url: string;
  close(): Promise<void>;
}

/** The real service (createApp) on `db`, listening on a free port of 127.0.0.1, anchoring off. */
export async function startService(db: TestDatabase): Promise<RunningService> {
  const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS, poolSize: 4 });
  let app: INestApplication | undefined;
  let url: string;
  try {
    app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger: new Ledger(dataSource) });
    url = await listenOnLoopback(app);
  } catch (err) {
    await app?.close();
    await dataSource.destroy();
    throw err;
  }
  return {
    url,
    close: async () => {
      await app!.close();
      await dataSource.destroy();
    },
  };
}

export type Tampering = Parameters<typeof tamper> extends [unknown, ...infer S] ? S : never;

/**
 * Copies of a template database, each tampered with and served by the real service, for the tests of a
 * describe block; `track` adds anything else to close. After each test every service is closed and every
 * copy dropped.
 */
export function useTamperedCopies(template: () => TestDatabase): {
  serve(...tampering: Tampering): Promise<{ url: string; db: TestDatabase }>;
  track(closable: { close(): Promise<void> }): void;
} {
  const open: { close(): Promise<void> }[] = [];
  const dbs: TestDatabase[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
    while (dbs.length) await dbs.pop()!.drop();
  });
  return {
    serve: async (...tampering) => {
      const db = await cloneDatabase(template());
      dbs.push(db);
      if (tampering.length) await tamper(db, ...tampering);
      const service = await startService(db);
      open.push(service);
      return { url: service.url, db };
    },
    track: (closable) => void open.push(closable),
  };
}
