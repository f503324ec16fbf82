import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { createApp } from '../../apps/api/src/app';
import { RATE_LIMIT_WINDOW_MS } from '../../apps/api/src/common/rate-limit.guard';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { VALID_KEYS_REFRESH_MS } from '../../apps/api/src/keys/api-key.authenticator';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { waitFor } from '../support/probe';
import { sharedTestKeyStore } from '../support/key-store';

const LIMIT = 3;

/** The rate limit's clock, which the tests drive: 10 s into a window, unless a test moves it. */
const WINDOW_START = Date.UTC(2030, 0, 1, 12, 0, 0);
const clock = { now: WINDOW_START + 10_000 };

describe('the rate limit (RATE_LIMIT_PER_MINUTE)', () => {
  let db: TestDatabase;
  let dataSources: DataSource[];
  let app: INestApplication;
  const keys: Record<'a' | 'b' | 'c' | 'd' | 'e', string> = { a: '', b: '', c: '', d: '', e: '' };
  const http = (a: INestApplication = app) => request(a.getHttpServer());

  /** The service on `dataSource` with a limit of LIMIT requests per minute. */
  async function startApp(dataSource: DataSource, env: Record<string, string> = {}): Promise<INestApplication> {
    const config = loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off', RATE_LIMIT_PER_MINUTE: String(LIMIT), ...env });
    const started = await createApp({ keyStore: await sharedTestKeyStore(), config, dataSource, ledger: new Ledger(dataSource), rateLimitClock: () => clock.now });
    await started.init();
    return started;
  }

  beforeAll(async () => {
    db = await createTestDatabase('rate_limit');
    // Two pools on one database: two processes of the service.
    dataSources = [
      await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS }),
      await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS }),
    ];
    const service = new ApiKeyService(dataSources[0]);
    for (const name of Object.keys(keys) as (keyof typeof keys)[]) keys[name] = (await service.create('ml', `key ${name}`)).key;
  });

  beforeEach(async () => {
    await dataSources[0].query('TRUNCATE rate_limit_hits');
    clock.now = WINDOW_START + 10_000;
    app = await startApp(dataSources[0]);
  });

  afterEach(() => app.close());

  afterAll(async () => {
    for (const dataSource of dataSources) await dataSource.destroy();
    await db.drop();
  });

  it('answers 429 with Retry-After after RATE_LIMIT_PER_MINUTE requests of one key, counted over all routes', async () => {
    const asA = (path: string) => http().get(path).set('Authorization', `Bearer ${keys.a}`);
    await asA('/v1/datasets').expect(200);
    await asA('/v1/models').expect(200);
    await asA('/v1/datasets').expect(200);
    const refused = await asA('/v1/models').expect(429);
    expect(refused.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringContaining(`${LIMIT} requests per minute`),
    });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // The window's end, as the clock has it: 10 s into the window, 50 s are left.
    expect(retryAfter).toBe((RATE_LIMIT_WINDOW_MS - 10_000) / 1000);
    // Once that window ended, the key is counted afresh.
    clock.now = WINDOW_START + RATE_LIMIT_WINDOW_MS;
    await asA('/v1/datasets').expect(200);
  });

  it('leaves other keys and public callers their own allowance', async () => {
    const as = (key: string) => http().get('/v1/datasets').set('Authorization', `Bearer ${key}`);
    for (let i = 0; i < LIMIT; i++) await as(keys.a).expect(200);
    await as(keys.a).expect(429);
    for (let i = 0; i < LIMIT; i++) await as(keys.b).expect(200);
    for (let i = 0; i < LIMIT; i++) await http().get('/v1/ledger/checkpoint').expect(200);
    await http().get('/v1/ledger/checkpoint').expect(429);
    await as(keys.b).expect(429);
  });

  it('never limits /v1/health', async () => {
    for (let i = 0; i < LIMIT + 3; i++) await http().get('/v1/health').expect(200);
    await http().get('/v1/health').set('Authorization', `Bearer ${keys.a}`).expect(200);
  });

  it('counts one limit over every process on the database, also under concurrent requests', async () => {
    const second = await startApp(dataSources[1]);
    try {
      const via = (a: INestApplication) => http(a).get('/v1/datasets').set('Authorization', `Bearer ${keys.c}`);
      await via(app).expect(200);
      await via(second).expect(200);
      await via(app).expect(200);
      await via(second).expect(429);
      await via(app).expect(429);
      // 12 at once from a fresh key over both: exactly LIMIT pass.
      const statuses = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          http(i % 2 ? app : second)
            .get('/v1/datasets')
            .set('Authorization', `Bearer ${keys.d}`)
            .then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(12 - LIMIT);
    } finally {
      await second.close();
    }
  });

  it('counts a key under its id (never the key, nor a hash of it) and deletes the counts of windows that ended', async () => {
    await dataSources[0].query(`INSERT INTO rate_limit_hits (tracker, window_start, hits) VALUES ('default:key:old', now() - interval '1 hour', 7)`);
    await http().get('/v1/datasets').set('Authorization', `Bearer ${keys.e}`).expect(200);
    const [{ id }] = await dataSources[0].query(`SELECT id FROM api_keys WHERE name = 'key e'`);
    // The old window's row is deleted off the request's path: wait for it.
    const rows: { tracker: string; hits: number }[] = await waitFor(
      () => dataSources[0].query(`SELECT tracker, hits FROM rate_limit_hits ORDER BY tracker`),
      (r: unknown[]) => r.length === 1,
      60_000, // at once on a quiet machine; a deadline, not a timing claim
    );
    expect(rows).toEqual([{ tracker: `default:key:${id}`, hits: 1 }]);
    expect(JSON.stringify(rows)).not.toContain(keys.e);
  });

  it('counts made-up keys against their address: 50 junk tokens from one address are limited, without a lookup or a write each', async () => {
    const queries = jest.spyOn(dataSources[0], 'query');
    try {
      const statuses: number[] = [];
      const started = Date.now();
      for (let n = 0; n < 50; n++) statuses.push((await http().get('/v1/datasets').set('Authorization', `Bearer junk-${n}`)).status);
      // The address's allowance: LIMIT answers (401: the key is wrong), then 429 for the rest.
      expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(401));
      expect(statuses.slice(LIMIT)).toEqual(Array(50 - LIMIT).fill(429));
      // The same junk again, and a public request: the address is over its limit.
      await http().get('/v1/datasets').set('Authorization', 'Bearer junk-0').expect(429);
      await http().get('/v1/ledger/checkpoint').expect(429);
      const sql = queries.mock.calls.map(([text]) => String(text));
      const lookups = sql.filter((s) => /FROM api_keys WHERE key_hash = \$1/.test(s)).length;
      const snapshots = sql.filter((s) => /FROM api_keys WHERE revoked_at IS NULL/.test(s)).length;
      const writes = sql.filter((s) => /INSERT INTO rate_limit_hits/.test(s)).length;
      // Junk was looked up and counted until the address went over its limit (the (LIMIT + 1)th request),
      // then not at all: one read of the valid keys' hashes told the rest apart. That read is redone every
      // VALID_KEYS_REFRESH_MS of wall clock, which these ~48 requests can outlast on a loaded machine: at most
      // one read per such span, never one per request.
      const refreshes = Math.floor((Date.now() - started) / VALID_KEYS_REFRESH_MS);
      expect({ lookups, writes }).toEqual({ lookups: LIMIT + 1, writes: LIMIT + 1 });
      expect(snapshots).toBeGreaterThanOrEqual(1);
      expect(snapshots).toBeLessThanOrEqual(1 + refreshes);
      const rows = await dataSources[0].query(`SELECT tracker, hits FROM rate_limit_hits`);
      expect(rows).toEqual([{ tracker: expect.stringMatching(/^default:ip:/), hits: LIMIT + 1 }]);
      // A real key keeps its own allowance at this address, also one this process has not seen before.
      await http().get('/v1/datasets').set('Authorization', `Bearer ${keys.a}`).expect(200);
      // Once the window ended, the address is counted afresh.
      clock.now = WINDOW_START + RATE_LIMIT_WINDOW_MS;
      await http().get('/v1/datasets').set('Authorization', 'Bearer junk-0').expect(401);
    } finally {
      queries.mockRestore();
    }
  });

  it('counts the forwarded address behind a trusted proxy (TRUST_PROXY), and ignores X-Forwarded-For otherwise', async () => {
    const viaProxy = (a: INestApplication, client: string) => http(a).get('/v1/ledger/checkpoint').set('X-Forwarded-For', client);
    // Without TRUST_PROXY a client cannot get a fresh allowance by making up a forwarded address.
    for (let i = 0; i < LIMIT; i++) await viaProxy(app, `203.0.113.${i + 1}`).expect(200);
    await viaProxy(app, '203.0.113.99').expect(429);

    await dataSources[0].query('TRUNCATE rate_limit_hits');
    const proxied = await startApp(dataSources[1], { TRUST_PROXY: 'loopback' });
    try {
      for (let i = 0; i < LIMIT; i++) await viaProxy(proxied, '203.0.113.1').expect(200);
      await viaProxy(proxied, '203.0.113.1').expect(429);
      await viaProxy(proxied, '203.0.113.2').expect(200);
      const trackers = (await dataSources[0].query(`SELECT tracker FROM rate_limit_hits ORDER BY tracker`)).map((r: { tracker: string }) => r.tracker);
      expect(trackers).toEqual(['default:ip:203.0.113.1', 'default:ip:203.0.113.2']);
    } finally {
      await proxied.close();
    }
  });
});
