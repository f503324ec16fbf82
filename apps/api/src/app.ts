import { BadRequestException, INestApplication, LoggerService, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Server } from 'node:http';
import { AppModule, AppModuleOptions } from './app.module';
import { requestLogMiddleware } from './auth/request-log.middleware';
import { answerClientErrorsAsJson } from './common/client-errors';
import { refuseRequestsWhileLingering } from './common/close-in-stages';
import { DomainExceptionFilter } from './common/domain-exception.filter';
import { mountPortal } from './portal/portal-static';

export interface CreateAppOptions extends AppModuleOptions {
  logger?: LoggerService | false;
}

/** Builds the HTTP application (not yet listening): routes, error mapping, body limits and timeouts, OpenAPI at /docs, the portal at /portal. */
export async function createApp(options: CreateAppOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(options), {
    logger: options.logger ?? false,
    bodyParser: false,
  });
  app.use(refuseRequestsWhileLingering);
  app.use(requestLogMiddleware);
  // No body parser here: bodies are read once the guards let the request through (JsonBodyInterceptor;
  // NDJSON sample uploads are streamed by their route).
  mountPortal(app, options.config.portal.dir);
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      // Messages name the field ("name must be shorter than or equal to 200 characters"); the values
      // themselves are not echoed.
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => new BadRequestException(errors.flatMap(describeValidationError)),
    }),
  );
  app.useGlobalFilters(new DomainExceptionFilter());
  app.disable('x-powered-by');
  // Behind a reverse proxy (TRUST_PROXY), req.ip is the client's address it forwards: the rate limit counts it.
  if (options.config.trustProxy !== false) app.set('trust proxy', options.config.trustProxy);
  // Node answers 408 and closes the connection when headers take longer than headersTimeout, or a whole
  // request longer than requestTimeout (checked every 30 s). requestTimeout is the NDJSON upload's bound,
  // the longest a request may legitimately take (it is read as fast as it is committed); JSON bodies have
  // their own, shorter bound (JsonBodyInterceptor), and an upload may not fall silent for longer than that
  // either (SampleUploadService).
  const server = app.getHttpServer() as Server;
  server.headersTimeout = options.config.http.headersTimeoutMs;
  server.requestTimeout = options.config.http.uploadTimeoutMs;
  answerClientErrorsAsJson(server);
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Lethe')
      .setDescription('Verifiable machine unlearning: an RFC 9162 log of what models learned and unlearned, anchored on Ethereum')
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'an API key (roles admin, ml, auditor)' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  return app;
}

function describeValidationError(error: { property: string; constraints?: Record<string, string>; children?: unknown[] }): string[] {
  const own = Object.values(error.constraints ?? {});
  const nested = (error.children ?? []).flatMap((c) => describeValidationError(c as typeof error).map((m) => `${error.property}.${m}`));
  return own.length + nested.length > 0 ? [...own, ...nested] : [`${error.property} is invalid`];
}
