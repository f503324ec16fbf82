import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { openDatabase } from '@lethe/ledger';
import { DomainExceptionFilter } from '../../apps/api/src/common/domain-exception.filter';
import { RATE_LIMIT_WINDOW_MS, RateLimitGuard, rateLimitOptions } from '../../apps/api/src/common/rate-limit.guard';
import { RATE_LIMIT_CLOCK } from '../../apps/api/src/common/rate-limit.storage';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { HealthController } from '../../apps/api/src/health/health.controller';
import { HealthService } from '../../apps/api/src/health/health.service';
import { TestDatabase, createTestDatabase } from '../support/database';
import { waitFor } from '../support/probe';

@Controller('v1/things')
class ThingsController {
  @Get()
  list(): string[] {
    return [];
  }

  @Get('other')
  other(): string[] {
    return [];
  }
}

const LIMIT = 3;

/** The rate limit's clock, which the tests drive: 10 s into a window, unless a test moves it. */
const WINDOW_START = Date.UTC(2030, 0, 1, 12, 0, 0);
const clock = { now: WINDOW_START + 10_000 };

/** The guard alone, in front of stand-in routes, counting in `dataSource` (AppModule.forRoot wires it when RATE_LIMIT_PER_MINUTE > 0). */
async function startApp(dataSource: DataSource): Promise<INestApplication> {
  @Module({
    imports: [ThrottlerModule.forRoot(rateLimitOptions(LIMIT))],
    controllers: [ThingsController, HealthController],
    providers: [
      { provide: DataSource, useValue: dataSource },
      { provide: HealthService, useValue: { check: async () => ({ status: 'ok', database: { ok: true } }) } },
      { provide: RATE_LIMIT_CLOCK, useValue: () => clock.now },
      { provide: APP_GUARD, useClass: RateLimitGuard },
    ],
  })
  class TestModule {}
  const app = await NestFactory.create(TestModule, { logger: process.env.DEBUG_RL ? undefined : false });
  app.useGlobalFilters(new DomainExceptionFilter());
  await app.init();
  return app;
}

describe('RateLimitGuard', () => {
  let db: TestDatabase;
  let dataSources: DataSource[];
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    db = await createTestDatabase('rate_limit');
    // Two pools on one database: two processes of the service.
    dataSources = [
      await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS }),
      await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS }),
    ];
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
    const asA = (path: string) => http().get(path).set('Authorization', 'Bearer key-a');
    await asA('/v1/things').expect(200);
    await asA('/v1/things/other').expect(200);
    await asA('/v1/things').expect(200);
    const refused = await asA('/v1/things/other').expect(429);
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
    await asA('/v1/things').expect(200);
  });

  it('leaves other keys and public callers their own allowance', async () => {
    for (let i = 0; i < LIMIT; i++) await http().get('/v1/things').set('Authorization', 'Bearer key-a').expect(200);
    await http().get('/v1/things').set('Authorization', 'Bearer key-a').expect(429);
    for (let i = 0; i < LIMIT; i++) await http().get('/v1/things').set('Authorization', 'Bearer key-b').expect(200);
    for (let i = 0; i < LIMIT; i++) await http().get('/v1/things').expect(200);
    await http().get('/v1/things').expect(429);
    await http().get('/v1/things').set('Authorization', 'Bearer key-b').expect(429);
  });

  it('never limits /v1/health', async () => {
    for (let i = 0; i < LIMIT + 3; i++) await http().get('/v1/health').expect(200);
    await http().get('/v1/health').set('Authorization', 'Bearer key-a').expect(200);
  });

  it('counts one limit over every process on the database, also under concurrent requests', async () => {
    const second = await startApp(dataSources[1]);
    try {
      const via = (a: INestApplication) => request(a.getHttpServer()).get('/v1/things').set('Authorization', 'Bearer key-c');
      await via(app).expect(200);
      await via(second).expect(200);
      await via(app).expect(200);
      await via(second).expect(429);
      await via(app).expect(429);
      // 12 at once from a fresh key over both: exactly LIMIT pass.
      const statuses = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          request((i % 2 ? app : second).getHttpServer())
            .get('/v1/things')
            .set('Authorization', 'Bearer key-d')
            .then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(12 - LIMIT);
    } finally {
      await second.close();
    }
  });

  it('stores a hash of the key, never the key, and deletes the counts of windows that ended', async () => {
    await dataSources[0].query(
      `INSERT INTO rate_limit_hits (tracker, window_start, hits) VALUES ('default:key:old', now() - interval '1 hour', 7)`,
    );
    await http().get('/v1/things').set('Authorization', 'Bearer key-secret-e').expect(200);
    // The old window's row is deleted off the request's path: wait for it.
    const rows: { tracker: string; hits: number }[] = await waitFor(
      () => dataSources[0].query(`SELECT tracker, hits FROM rate_limit_hits ORDER BY tracker`),
      (r: unknown[]) => r.length === 1,
      5000,
    );
    expect(rows).toEqual([{ tracker: expect.stringMatching(/^default:key:[0-9a-f]{64}$/), hits: 1 }]);
    expect(JSON.stringify(rows)).not.toContain('key-secret-e');
  });
});
