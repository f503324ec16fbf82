import { INestApplication, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule, AppModuleOptions } from './app.module';
import { DomainExceptionFilter } from './common/domain-exception.filter';

export interface CreateAppOptions extends AppModuleOptions {
  logger?: LoggerService | false;
}

/** Builds the HTTP application (not yet listening): routes, error mapping, body limits, OpenAPI at /docs. */
export async function createApp(options: CreateAppOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(options), {
    logger: options.logger ?? false,
    bodyParser: false,
  });
  app.useBodyParser('json', { limit: '1mb' });
  app.useGlobalFilters(new DomainExceptionFilter());
  app.disable('x-powered-by');
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Lethe')
      .setDescription('Verifiable machine unlearning: an RFC 9162 log of what models learned and unlearned, anchored on Ethereum')
      .setVersion('1')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  return app;
}
