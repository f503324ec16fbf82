import { INestApplication } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { ApiKeyService } from '../../apps/api/src/keys/api-key.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { probeUntil } from '../support/probe';
import { startServiceOnFreePort, startServiceProcess } from '../support/service-process';
import { sharedTestKeyStore } from '../support/key-store';
import { ErasureSweep } from '../../apps/api/src/sweeps/erasure-sweep.service';

const ROOT = join(__dirname, '..', '..');
type Caller = 'public' | 'ml' | 'auditor' | 'admin' | 'wrong' | 'revoked';
const CALLERS: Caller[] = ['public', 'ml', 'auditor', 'admin', 'wrong', 'revoked'];

/**
 * Who may call what. Every route of the service must be listed here (the first test fails otherwise),
 * so a new route cannot be left public by forgetting @Roles.
 */
const MATRIX: Record<string, 'public' | ('ml' | 'auditor' | 'admin')[]> = {
  'GET /v1/health': 'public',
  'GET /v1/ledger/checkpoint': 'public',
  'GET /v1/ledger/entries': 'public',
  'GET /v1/ledger/proofs/inclusion': 'public',
  'GET /v1/ledger/proofs/consistency': 'public',
  'GET /v1/anchors': 'public',
  'GET /v1/anchors/latest': 'public',
  'GET /v1/receipts/{commitment}': 'public',
  'GET /v1/portal/config': 'public',
  'POST /v1/keys': ['admin'],
  'GET /v1/keys': ['admin'],
  'DELETE /v1/keys/{id}': ['admin'],
  'POST /v1/datasets': ['ml'],
  'GET /v1/datasets': ['ml', 'auditor'],
  'GET /v1/datasets/{id}': ['ml', 'auditor'],
  'GET /v1/datasets/{id}/versions': ['ml', 'auditor'],
  'POST /v1/datasets/{id}/samples': ['ml'],
  'POST /v1/forget-requests': ['ml'],
  'GET /v1/forget-requests': ['ml', 'auditor'],
  'GET /v1/forget-requests/{id}': ['ml', 'auditor'],
  'POST /v1/forget-requests/{id}/extend': ['ml'],
  'POST /v1/forget-requests/{id}/restore': ['ml'],
  'POST /v1/forget-requests/{id}/shred': ['ml'],
  'POST /v1/models': ['ml'],
  'GET /v1/models': ['ml', 'auditor'],
  'GET /v1/models/{id}': ['ml', 'auditor'],
  'GET /v1/models/{id}/versions/{version}': ['ml', 'auditor'],
  'GET /v1/models/{id}/versions/{version}/onnx': ['ml', 'auditor'],
  'POST /v1/models/{id}/predict': ['ml'],
  'POST /v1/models/{id}/rollback': ['ml'],
  'POST /v1/models/{id}/learn': ['ml'],
  'POST /v1/models/{id}/bias-scan': ['ml'],
  'GET /v1/models/{id}/bias-scans/{jobId}': ['ml'],
  'POST /v1/models/{id}/versions/{version}/release': ['ml'],
  'GET /v1/jobs/{id}': ['ml', 'auditor'],
};

function expectedStatus(route: string, caller: Caller): 'allowed' | 401 | 403 {
  const rule = MATRIX[route];
  if (caller === 'wrong' || caller === 'revoked') return 401; // a bad key is refused even on public routes
  if (rule === 'public') return 'allowed';
  if (caller === 'public') return 401;
  return rule.includes(caller) ? 'allowed' : 403;
}

describe('API keys and roles', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let app: INestApplication;
  const keys: Partial<Record<Caller, string>> = {};

  beforeAll(async () => {
    db = await createTestDatabase('auth_api');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger: new Ledger(dataSource) });
    await app.init();
    const service = new ApiKeyService(dataSource);
    for (const role of ['ml', 'auditor', 'admin'] as const) keys[role] = (await service.create(role, `${role} of the matrix`)).key;
    const revoked = await service.create('admin', 'revoked');
    await service.revoke(revoked.id);
    keys.revoked = revoked.key;
    keys.wrong = 'lethe_' + 'A'.repeat(43);
  });

  afterAll(async () => {
    await app.close();
    await dataSource.destroy();
    await db.drop();
  });

  const http = () => request(app.getHttpServer());

  function call(method: string, path: string, caller: Caller): request.Test {
    const url = path.replace('{id}', '00000000-0000-4000-8000-000000000000').replace('{commitment}', 'ab'.repeat(32)).replace('{version}', '1').replace('{jobId}', '00000000-0000-4000-8000-000000000000');
    const req = (http() as unknown as Record<string, (u: string) => request.Test>)[method.toLowerCase()](url);
    const key = keys[caller];
    if (key) req.set('Authorization', `Bearer ${key}`);
    if (method === 'POST') req.send({});
    return req;
  }

  it('lists every route of the service in the route x role matrix', async () => {
    const { body } = await http().get('/docs-json').expect(200);
    const routes = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(Object.keys(MATRIX).sort());
  });

  const cases = Object.keys(MATRIX).flatMap((route) => CALLERS.map((caller) => [route, caller, expectedStatus(route, caller)] as const));
  it.each(cases)('%s as %s: %s', async (route, caller, expected) => {
    const [method, path] = route.split(' ');
    const res = await call(method, path, caller);
    if (expected === 'allowed') expect([401, 403]).not.toContain(res.status);
    else {
      expect(res.status).toBe(expected);
      expect(res.body).toEqual({ statusCode: expected, error: expected === 401 ? 'Unauthorized' : 'Forbidden', message: expect.any(String) });
    }
  });

  it('refuses a malformed Authorization header with a 401', async () => {
    for (const header of ['Basic abc', 'Bearer', 'Bearer a b', `bearer ${keys.ml}`]) {
      const res = await http().get('/v1/datasets').set('Authorization', header);
      expect(res.status).toBe(401);
    }
  });

  it('creates a key shown once (stored hashed), lists keys without them, and a revoked key stops working at once', async () => {
    const created = await http().post('/v1/keys').set('Authorization', `Bearer ${keys.admin}`).send({ role: 'auditor', name: 'regulator' }).expect(201);
    expect(created.body).toEqual({ id: expect.any(String), key: expect.stringMatching(/^lethe_[A-Za-z0-9_-]{43}$/), role: 'auditor', name: 'regulator' });
    const stored = await dataSource.query(`SELECT encode(key_hash, 'hex') AS hash FROM api_keys WHERE id = $1`, [created.body.id]);
    expect(stored[0].hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await dataSource.query(`SELECT * FROM api_keys`))).not.toContain(created.body.key);
    await http().get('/v1/datasets').set('Authorization', `Bearer ${created.body.key}`).expect(200);
    const list = await http().get('/v1/keys?limit=1000').set('Authorization', `Bearer ${keys.admin}`).expect(200);
    expect(list.body.find((k: { id: string }) => k.id === created.body.id)).toEqual({
      id: created.body.id,
      name: 'regulator',
      role: 'auditor',
      createdAt: expect.any(String),
      revokedAt: null,
    });
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    await http().delete(`/v1/keys/${created.body.id}`).set('Authorization', `Bearer ${keys.admin}`).expect(204);
    const refused = await http().get('/v1/datasets').set('Authorization', `Bearer ${created.body.key}`).expect(401);
    expect(refused.body.message).toBe('unknown or revoked API key');
    await http().delete('/v1/keys/00000000-0000-4000-8000-000000000000').set('Authorization', `Bearer ${keys.admin}`).expect(404);
    await http().delete('/v1/keys/123').set('Authorization', `Bearer ${keys.admin}`).expect(400);
  });

  it.each([
    [{ role: 'root' }, 'role'],
    [{}, 'role'],
    [{ role: 'ml', name: '' }, 'name'],
    [{ role: 'ml', name: 'n'.repeat(201) }, 'name'],
    [{ role: 'ml', key: 'mine' }, 'key'],
  ])('POST /v1/keys %j is a 400 naming "%s"', async (body, field) => {
    const res = await http().post('/v1/keys').set('Authorization', `Bearer ${keys.admin}`).send(body).expect(400);
    expect(res.body.message).toContain(field);
  });

  describe('Idempotency-Key', () => {
    it('replays the first answer for the same key and body, without a second entry', async () => {
      const before = (await http().get('/v1/ledger/checkpoint')).body.treeSize;
      const send = (body: object) =>
        http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'create-iris-1').send(body);
      const first = await send({ name: 'iris', features: 4, classes: 3 }).expect(201);
      const second = await send({ classes: 3, features: 4, name: 'iris' }).expect(201);
      expect(second.body).toEqual(first.body);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect((await http().get('/v1/ledger/checkpoint')).body.treeSize).toBe(before + 1);
      const conflict = await send({ name: 'other', features: 4, classes: 3 }).expect(409);
      expect(conflict.body.message).toContain('different body');
      const otherRoute = await http()
        .post('/v1/forget-requests')
        .set('Authorization', `Bearer ${keys.ml}`)
        .set('Idempotency-Key', 'create-iris-1')
        .send({ datasetId: first.body.id, externalIds: ['x'], reason: 'r' })
        .expect(409);
      expect(otherRoute.body.message).toContain('POST /v1/datasets');
    });

    it('is per caller and does not store failures', async () => {
      const other = (await new ApiKeyService(dataSource).create('ml')).key;
      const a = await http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'k2').send({ name: 'a', features: 1, classes: 2 });
      const b = await http().post('/v1/datasets').set('Authorization', `Bearer ${other}`).set('Idempotency-Key', 'k2').send({ name: 'a', features: 1, classes: 2 });
      expect(a.status).toBe(201);
      expect(b.status).toBe(201);
      expect(b.body.id).not.toBe(a.body.id);
      await http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'k3').send({ name: '', features: 1, classes: 2 }).expect(400);
      await http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'k3').send({ name: 'fixed', features: 1, classes: 2 }).expect(201);
      await http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'x'.repeat(256)).send({}).expect(400);
    });

    it('never gives a new API key twice: a retry of POST /v1/keys is a 409 naming what was made, and no key is stored', async () => {
      const send = () => http().post('/v1/keys').set('Authorization', `Bearer ${keys.admin}`).set('Idempotency-Key', 'new-key-1').send({ role: 'ml', name: 'retried' });
      const first = await send().expect(201);
      expect(first.body.key).toMatch(/^lethe_/);
      const retry = await send().expect(409);
      expect(JSON.stringify(retry.body)).not.toContain(first.body.key);
      expect(retry.body.message).toContain('held a secret that is shown only once');
      expect(retry.body.message).toContain(first.body.id);
      // One key was made, not two.
      const listed = (await http().get('/v1/keys').set('Authorization', `Bearer ${keys.admin}`).expect(200)).body as { name: string }[];
      expect(listed.filter((k) => k.name === 'retried')).toHaveLength(1);
      expect(await idempotencyTableText()).not.toContain(first.body.key);
    });

    it('stores no Idempotency-Key, body or answer in clear: rows are found by a keyed hash and answers are sealed', async () => {
      const key = 'idempotency-key-marker-7f3a';
      const { body: dataset } = await http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).send({ name: 'sealed', features: 2, classes: 2 }).expect(201);
      const upload = () =>
        http()
          .post(`/v1/datasets/${dataset.id}/samples`)
          .set('Authorization', `Bearer ${keys.ml}`)
          .set('Idempotency-Key', key)
          .send([{ externalId: 'external-marker-55e1', subjectId: 'subject-marker-9c2b', features: [0.123456789, 2], label: 1 }]);
      const first = await upload().expect(200);
      const replayed = await upload().expect(200);
      expect(replayed.body).toEqual(first.body);
      expect(replayed.headers['idempotent-replayed']).toBe('true');
      const text = await idempotencyTableText();
      // Positive control: the scan reads the rows (their routes name the dataset).
      expect(text).toContain(dataset.id);
      for (const marker of [key, 'external-marker-55e1', 'subject-marker-9c2b', '0.123456789', first.body.commitments[0].commitment]) expect(text).not.toContain(marker);
    });

    it('forgets answers after IDEMPOTENCY_TTL_HOURS: a late retry runs anew, and the sweep deletes expired rows', async () => {
      const send = (name: string) => http().post('/v1/datasets').set('Authorization', `Bearer ${keys.ml}`).set('Idempotency-Key', 'ttl-1').send({ name, features: 1, classes: 2 });
      const first = await send('ttl').expect(201);
      await dataSource.query(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`);
      const later = await send('ttl').expect(201);
      expect(later.headers['idempotent-replayed']).toBeUndefined();
      expect(later.body.id).not.toBe(first.body.id);
      await dataSource.query(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`);
      expect((await dataSource.query(`SELECT count(*)::int AS n FROM idempotency_keys`))[0].n).toBeGreaterThan(0);
      expect((await app.get(ErasureSweep).sweep()).idempotencyExpired).toBeGreaterThan(0);
      expect((await dataSource.query(`SELECT count(*)::int AS n FROM idempotency_keys`))[0].n).toBe(0);
    });

    /** Every row of the idempotency table as text, with its bytea columns as raw bytes: where anything in clear would show. */
    async function idempotencyTableText(): Promise<string> {
      const rows: { t: string; response: Buffer | null }[] = await dataSource.query(`SELECT t::text AS t, response FROM idempotency_keys t`);
      return rows.map((r) => r.t + (r.response?.toString('latin1') ?? '')).join('\n');
    }
  });
});

describe('keys from the command line and the first admin key', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase('auth_cli');
  });

  afterEach(async () => {
    await db.drop();
  });

  const startService = (env: Record<string, string>) =>
    startServiceProcess({ LETHE_ADMIN_KEY: '', ...env, ANCHORING: 'off', DATABASE_URL: db.url });
  const startServiceOnPort = (env: Record<string, string>) =>
    startServiceOnFreePort({ LETHE_ADMIN_KEY: '', ...env, ANCHORING: 'off', DATABASE_URL: db.url });

  it('prints a generated first admin key once; it works; the next start does not print it; logs show key ids only', async () => {
    const first = await startServiceOnPort({});
    const { api } = first;
    let adminKey: string;
    let mlKey: string;
    try {
      const match = /First admin API key \(shown this once; store it now\): (lethe_[A-Za-z0-9_-]{43})/.exec(first.output());
      expect(match).not.toBeNull();
      adminKey = match![1];
      const res = await fetch(`${api}/v1/keys`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ role: 'ml' }),
      });
      expect(res.status).toBe(201);
      mlKey = ((await res.json()) as { key: string }).key;
      const requestLine = /"method":"POST","route":"\/v1\/keys","status":201,"ms":[\d.]+,"keyId":"[0-9a-f-]{36}"/;
      await probeUntil(async () => (requestLine.test(first.output()) ? true : undefined), 'the request log line').catch(() => undefined);
      expect(first.output()).toMatch(requestLine);
      expect(first.output().split(adminKey).length).toBe(2); // printed exactly once
      expect(first.output()).not.toContain(mlKey);
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    const second = await startServiceOnPort({});
    try {
      expect(second.output()).not.toContain('First admin API key');
      const res = await fetch(`${second.api}/v1/keys`, { headers: { Authorization: `Bearer ${adminKey}` } });
      expect(res.status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 900_000); // two starts of the service, each up to minutes on a loaded machine

  it('takes LETHE_ADMIN_KEY as an admin key without printing it, and refuses a short one without showing it', async () => {
    const adminKey = 'my-admin-key-' + 'x'.repeat(30);
    const service = await startServiceOnPort({ LETHE_ADMIN_KEY: adminKey });
    try {
      const res = await fetch(`${service.api}/v1/keys`, { headers: { Authorization: `Bearer ${adminKey}` } });
      expect(res.status).toBe(200);
      expect(service.output()).not.toContain('First admin API key');
      expect(service.output()).not.toContain(adminKey);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    const bad = startService({ PORT: String(service.port), LETHE_ADMIN_KEY: 'short-secret' }); // refused before it binds
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('bad configuration: LETHE_ADMIN_KEY:');
    expect(bad.output()).not.toContain('short-secret');
  }, 900_000); // two starts of the service, each up to minutes on a loaded machine

  it('npm run cli -- keys create --role ml makes a key the API accepts; keys revoke revokes it', async () => {
    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    const app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger: new Ledger(dataSource) });
    await app.init();
    try {
      const cli = (...args: string[]) =>
        promisify(execFile)(process.execPath, ['-r', './scripts/register.js', 'apps/cli/src/main.ts', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url } });
      const { stdout } = await cli('keys', 'create', '--role', 'ml', '--name', 'team A', '--json');
      const created = JSON.parse(stdout) as { id: string; key: string; role: string; name: string };
      expect(created).toMatchObject({ role: 'ml', name: 'team A' });
      await request(app.getHttpServer()).post('/v1/datasets').set('Authorization', `Bearer ${created.key}`).send({ name: 'd', features: 2, classes: 2 }).expect(201);
      const plain = await cli('keys', 'create', '--role', 'auditor');
      expect(plain.stdout).toMatch(/created auditor key [0-9a-f-]{36} \(auditor key\); the key, shown this once:\nlethe_/);
      await cli('keys', 'revoke', created.id);
      await request(app.getHttpServer()).get('/v1/datasets').set('Authorization', `Bearer ${created.key}`).expect(401);
      await expect(cli('keys', 'create', '--role', 'root')).rejects.toMatchObject({ code: 1 });
    } finally {
      await app.close();
      await dataSource.destroy();
    }
  });
});
