import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { hashEvent } from '@lethe/events';
import { Ledger, openDatabase } from '@lethe/ledger';
import { fromHex, toHex, verifyConsistency, verifyInclusion } from '@lethe/merkle';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { sharedTestKeyStore } from '../support/key-store';

describe('ledger HTTP routes', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let app: INestApplication;
  const events = buildEvents(0, 21);

  beforeAll(async () => {
    db = await createTestDatabase('ledger_api');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    const ledger = new Ledger(dataSource);
    await ledger.append(events);
    app = await createApp({ keyStore: await sharedTestKeyStore(), config: loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off' }), dataSource, ledger });
    await app.init();
  });

  afterAll(async () => {
    await app.close();
    await dataSource.destroy();
    await db.drop();
  });

  const http = () => request(app.getHttpServer());

  it('GET /v1/health reports the database and the ledger', async () => {
    const res = await http().get('/v1/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', database: { ok: true }, ledger: { treeSize: 21 } });
  });

  it('GET /v1/ledger/checkpoint gives the size and root', async () => {
    const res = await http().get('/v1/ledger/checkpoint').expect(200);
    expect(res.body.treeSize).toBe(21);
    expect(res.body.rootHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('GET /v1/ledger/entries pages through entries whose JSON re-hashes to the leaf hash', async () => {
    const res = await http().get('/v1/ledger/entries?start=5&limit=3').expect(200);
    expect(res.body.map((e: { index: number }) => e.index)).toEqual([5, 6, 7]);
    for (const entry of res.body as { index: number; leafHash: string; event: string }[]) {
      expect(entry.leafHash).toBe(toHex(hashEvent(JSON.parse(entry.event))));
      expect(JSON.parse(entry.event)).toEqual(events[entry.index]);
    }
    expect((await http().get('/v1/ledger/entries?start=20&limit=1000').expect(200)).body).toHaveLength(1);
    expect((await http().get('/v1/ledger/entries?start=21').expect(200)).body).toEqual([]);
  });

  it('GET /v1/ledger/proofs/inclusion gives a proof that verifies against the root', async () => {
    const { body } = await http().get('/v1/ledger/proofs/inclusion?index=13&treeSize=17').expect(200);
    expect(body).toMatchObject({ index: 13, treeSize: 17, leafHash: toHex(hashEvent(events[13])) });
    verifyInclusion(13, 17, fromHex(body.leafHash), body.proof.map((h: string) => fromHex(h)), fromHex(body.rootHash));
    const latest = await http().get('/v1/ledger/proofs/inclusion?index=0').expect(200);
    expect(latest.body.treeSize).toBe(21);
  });

  it('GET /v1/ledger/proofs/consistency gives a proof between two roots', async () => {
    const { body } = await http().get('/v1/ledger/proofs/consistency?from=6&to=21').expect(200);
    verifyConsistency(6, 21, body.proof.map((h: string) => fromHex(h)), fromHex(body.fromRoot), fromHex(body.toRoot));
    const { body: checkpoint } = await http().get('/v1/ledger/checkpoint');
    expect(body.toRoot).toBe(checkpoint.rootHash);
  });

  it.each([
    ['/v1/ledger/entries?start=-1', 'start'],
    ['/v1/ledger/entries?start=abc', 'start'],
    ['/v1/ledger/entries?limit=0', 'limit'],
    ['/v1/ledger/entries?limit=1000000', 'limit'],
    ['/v1/ledger/entries?start=99999999999999999999', 'start'],
    ['/v1/ledger/entries?start=1&start=2', 'start'],
    ['/v1/ledger/proofs/inclusion', 'index'],
    ['/v1/ledger/proofs/inclusion?index=1.5', 'index'],
    ['/v1/ledger/proofs/inclusion?index=21', 'index'],
    ['/v1/ledger/proofs/inclusion?index=2&treeSize=22', 'treeSize'],
    ['/v1/ledger/proofs/inclusion?index=0&treeSize=0', 'treeSize'],
    ['/v1/ledger/proofs/consistency?from=9&to=3', 'from'],
    ['/v1/ledger/proofs/consistency?from=0&to=3', 'from'],
    ['/v1/ledger/proofs/consistency?from=3&to=99', 'to'],
    ['/v1/ledger/proofs/consistency?to=3', 'from'],
  ])('GET %s is a 400 naming "%s", and the log is unchanged', async (url, param) => {
    const before = (await http().get('/v1/ledger/checkpoint')).body;
    const res = await http().get(url).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining(param) });
    expect((await http().get('/v1/ledger/checkpoint')).body).toEqual(before);
  });

  it('answers /v1/anchors with an empty list and /v1/anchors/latest with a 404 when nothing is anchored', async () => {
    expect((await http().get('/v1/anchors').expect(200)).body).toEqual([]);
    const res = await http().get('/v1/anchors/latest').expect(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'no checkpoint is anchored yet' });
    await http().get('/v1/anchors?limit=0').expect(400);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await http().get('/v1/nope').expect(404);
    expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });

  it('serves the OpenAPI document at /docs', async () => {
    const res = await http().get('/docs-json').expect(200);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/ledger/checkpoint', '/v1/ledger/proofs/inclusion']));
  });
});
