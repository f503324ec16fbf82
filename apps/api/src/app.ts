import { BadRequestException, INestApplication, LoggerService, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import type { Server } from 'node:http';
import { AppModule, AppModuleOptions } from './app.module';
import { requestLogMiddleware } from './auth/request-log.middleware';
import { DomainExceptionFilter } from './common/domain-exception.filter';
import { mountPortal } from './portal/portal-static';

/** Longest time a request body may take to arrive (an NDJSON upload is read as it is committed). */
export const UPLOAD_TIMEOUT_MS = 60 * 60 * 1000;

export interface CreateAppOptions extends AppModuleOptions {
  logger?: LoggerService | false;
}

/** Builds the HTTP application (not yet listening): routes, error mapping, body limits, OpenAPI at /docs, the portal at /portal. */
export async function createApp(options: CreateAppOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(options), {
    logger: options.logger ?? false,
    bodyParser: false,
  });
  app.use(requestLogMiddleware);
  // JSON bodies up to 1 MB; NDJSON sample uploads (application/x-ndjson) are not parsed here but
  // streamed line by line by the upload route, so they may be of any size.
  app.useBodyParser('json', { limit: '1mb' });
  app.use(bodyParserErrors);
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
  // Node ends a request whose body takes longer than 5 minutes to arrive; a large NDJSON upload
  // (a million samples) takes longer, since it is read as fast as it is committed. Headers must still
  // come within headersTimeout (60 s).
  (app.getHttpServer() as Server).requestTimeout = UPLOAD_TIMEOUT_MS;
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

/** body-parser's errors (bad JSON, too large) as the same JSON errors as everything else, not express's HTML page. */
function bodyParserErrors(error: unknown, _request: Request, response: Response, next: NextFunction): void {
  const e = error as { type?: string; status?: number; limit?: number };
  if (e?.type === 'entity.parse.failed') {
    response.status(400).json({ statusCode: 400, error: 'Bad Request', message: 'body is not valid JSON' });
    return;
  }
  if (e?.type === 'entity.too.large') {
    response.status(413).json({ statusCode: 413, error: 'Payload Too Large', message: `body is larger than ${e.limit} bytes (upload samples as NDJSON to send more)` });
    return;
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    response.status(e.status).json({ statusCode: e.status, error: 'Bad Request', message: 'the body cannot be read' });
    return;
  }
  next(error);
}
