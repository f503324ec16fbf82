import { INestApplication, Logger } from '@nestjs/common';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { Ledger, openDatabase } from '@lethe/ledger';
import type { DataSource } from 'typeorm';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildPortal } from './support/portal-build';
import { sharedTestKeyStore } from '../support/key-store';

/** The service serving the built portal at /portal, its public config route, and the answer when it was never built. */
describe('the portal, served by the service', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let portalDir: string;
  const apps: INestApplication[] = [];

  async function serve(env: Record<string, string>): Promise<INestApplication> {
    const app = await createApp({
      keyStore: await sharedTestKeyStore(),
      config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off', ...env }),
      dataSource,
      ledger: new Ledger(dataSource),
    });
    await app.init();
    apps.push(app);
    return app;
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const built = buildPortal();
    built.catch(() => undefined);
    db = await createTestDatabase('portal_serving');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS, poolSize: 2 });
    portalDir = await built;
  }, 120_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dataSource?.destroy();
    await db?.drop();
    if (portalDir) rmSync(portalDir, { recursive: true, force: true });
  });

  it('serves index.html at /portal and for any page under it, the hashed assets with long caching, under a CSP that allows no other origin for code', async () => {
    const server = (await serve({ PORTAL_DIR: portalDir })).getHttpServer();
    const index = readFileSync(join(portalDir, 'index.html'), 'utf8');
    for (const path of ['/portal', '/portal/', '/portal/verify', '/portal/models']) {
      const res = await request(server).get(path).expect(200);
      expect(res.text).toBe(index);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['cache-control']).toBe('no-cache');
    }
    // Every script and style of the page comes from the service, under /portal/assets/.
    const assets = [...index.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((u) => !u.startsWith('data:'));
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      expect(asset).toMatch(/^\/portal\/assets\//);
      const res = await request(server).get(asset).expect(200);
      expect(res.headers['cache-control']).toContain('immutable');
    }
    const script = (
      await request(server)
        .get(assets.find((a) => a.endsWith('.js'))!)
        .expect(200)
    ).text;
    expect(script).not.toMatch(/https?:\/\/(cdn|fonts|unpkg|jsdelivr)/);
    const missing = await request(server).get('/portal/assets/nothing-here.js').expect(404);
    expect(missing.body).toMatchObject({ statusCode: 404, message: 'no portal asset nothing-here.js' });
  });

  it('bundles nothing Node-only: no onnxruntime, none of the replay audit (libs/verifier/src/replay.ts)', () => {
    const scripts = readdirSync(join(portalDir, 'assets')).filter((f) => f.endsWith('.js'));
    expect(scripts.length).toBeGreaterThanOrEqual(1);
    for (const file of scripts) {
      const script = readFileSync(join(portalDir, 'assets', file), 'utf8');
      expect(script).toContain('INCONSISTENT_WITH_CHAIN'); // the positive control: the verifier is in the bundle
      // onnxruntime-node's binding and onnxruntime-common's session (the word "onnxruntime" alone is a field of
      // MODEL_PUBLISHED.runtime, which the portal shows).
      expect(script).not.toMatch(/onnxruntime_binding|onnxruntime-node|InferenceSession/);
      expect(script).not.toContain('which the service gives for version'); // a message of the replay audit
    }
  });

  it('answers GET /v1/portal/config publicly: PORTAL_RPC_URL, never RPC_URL', async () => {
    const server = (await serve({ PORTAL_DIR: portalDir, PORTAL_RPC_URL: 'https://rpc.example/public' })).getHttpServer();
    expect((await request(server).get('/v1/portal/config').expect(200)).body).toEqual({
      rpcUrl: 'https://rpc.example/public',
      contract: null,
      chainId: null,
    });
    // With a secret-bearing RPC_URL and no PORTAL_RPC_URL, the portal is told no RPC URL at all.
    const secret = 'https://mainnet.example/v3/secret-project-key';
    const config = loadConfig({ RPC_URL: secret, CONTRACT_ADDRESS: `0x${'ab'.repeat(20)}`, ANCHORER_PRIVATE_KEY: '11'.repeat(32) });
    expect(config.portal.rpcUrl).toBeUndefined();
    // The service's own local chain (no secret) is suggested by default.
    expect(loadConfig({ CHAIN_PORT: '9545' }).portal.rpcUrl).toBe('http://127.0.0.1:9545');
    expect(() => loadConfig({ PORTAL_RPC_URL: 'ftp://x' })).toThrow(/^PORTAL_RPC_URL:/);
  });

  it('answers a JSON 503 naming `npm run build:portal` when the portal is not built', async () => {
    const server = (await serve({ PORTAL_DIR: join(portalDir, 'not-built') })).getHttpServer();
    for (const path of ['/portal', '/portal/verify']) {
      const res = await request(server).get(path).expect(503);
      expect(res.body).toMatchObject({ statusCode: 503, message: expect.stringContaining('npm run build:portal') });
    }
  });
});
