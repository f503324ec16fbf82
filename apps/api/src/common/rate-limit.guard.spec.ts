import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import request from 'supertest';
import { HealthController } from '../health/health.controller';
import { HealthService } from '../health/health.service';
import { DomainExceptionFilter } from './domain-exception.filter';
import { RateLimitGuard, rateLimitOptions } from './rate-limit.guard';

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

@Module({
  imports: [ThrottlerModule.forRoot(rateLimitOptions(LIMIT))],
  controllers: [ThingsController, HealthController],
  providers: [
    { provide: HealthService, useValue: { check: async () => ({ status: 'ok', database: { ok: true } }) } },
    { provide: APP_GUARD, useClass: RateLimitGuard },
  ],
})
class TestModule {}

/** The guard alone, in front of stand-in routes (AppModule.forRoot wires it when RATE_LIMIT_PER_MINUTE > 0). */
describe('RateLimitGuard', () => {
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeEach(async () => {
    app = await NestFactory.create(TestModule, { logger: false });
    app.useGlobalFilters(new DomainExceptionFilter());
    await app.init();
  });

  afterEach(() => app.close());

  it('answers 429 with Retry-After after RATE_LIMIT_PER_MINUTE requests of one key, counted over all routes', async () => {
    const asA = (path: string) => http().get(path).set('Authorization', 'Bearer key-a');
    await asA('/v1/things').expect(200);
    await asA('/v1/things/other').expect(200);
    await asA('/v1/things').expect(200);
    const refused = await asA('/v1/things/other').expect(429);
    expect(refused.body).toEqual({ statusCode: 429, error: 'Too Many Requests', message: expect.stringContaining(`${LIMIT} requests per minute`) });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
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
});
