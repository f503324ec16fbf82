import {
  BadRequestException,
  CallHandler,
  ExecutionContext,
  HttpException,
  Inject,
  Injectable,
  NestInterceptor,
  PayloadTooLargeException,
  RequestTimeoutException,
  SetMetadata,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { json } from 'body-parser';
import type { Request, RequestHandler, Response } from 'express';
import { Observable } from 'rxjs';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.provider';
import { NDJSON_TYPE } from './media-types';

/** Largest JSON body (samples beyond it go as an NDJSON stream). */
export const JSON_BODY_LIMIT_BYTES = 1024 * 1024;

const ACCEPTS_NDJSON = 'lethe:accepts-ndjson';

/** Marks a route that also takes an NDJSON stream, which it reads itself (the sample upload). */
export const AcceptsNdjson = (): MethodDecorator => SetMetadata(ACCEPTS_NDJSON, true);

/**
 * Reads a request's JSON body once the guards have let it through: the application runs without Nest's
 * body parser, so a request with a missing, wrong or throttled key is refused before a byte of its body is
 * read (and DomainExceptionFilter closes such a connection instead of reading the rest). A JSON body may
 * hold up to JSON_BODY_LIMIT_BYTES and must arrive within BODY_TIMEOUT_SECONDS, or the answer is a 413 or a
 * 408. A body of any other type is a 415 naming Content-Type (a form, text, NDJSON where the route takes
 * none), except an NDJSON stream on a route marked @AcceptsNdjson, which the route reads itself.
 */
@Injectable()
export class JsonBodyInterceptor implements NestInterceptor {
  private readonly parse: RequestHandler = json({ limit: JSON_BODY_LIMIT_BYTES });

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<Request>();
    if (!hasBody(request)) return next.handle();
    const acceptsNdjson = this.reflector.get<boolean | undefined>(ACCEPTS_NDJSON, context.getHandler()) === true;
    if (acceptsNdjson && request.is(NDJSON_TYPE)) return next.handle();
    if (!request.is('application/json')) {
      const wanted = acceptsNdjson ? `application/json (a JSON array) or ${NDJSON_TYPE} (NDJSON, one item per line)` : 'application/json';
      throw new UnsupportedMediaTypeException(`Content-Type must be ${wanted}, got ${describeType(request.headers['content-type'])}`);
    }
    await this.read(request, context.switchToHttp().getResponse<Response>(), acceptsNdjson);
    return next.handle();
  }

  private read(request: Request, response: Response, acceptsNdjson: boolean): Promise<void> {
    const timeoutMs = this.config.http.bodyTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new RequestTimeoutException(`the body did not arrive within ${timeoutMs / 1000} s`)), timeoutMs);
      this.parse(request, response, (error?: unknown) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(describeBodyError(error, acceptsNdjson));
      });
    });
  }
}

/** Whether the request carries a body (RFC 9112 §6.3: Transfer-Encoding, or a non-zero Content-Length). */
export function hasBody(request: Request): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function describeType(header: string | undefined): string {
  if (header === undefined || header.trim() === '') return 'none';
  const type = header.split(';')[0].trim();
  return `"${type.length > 100 ? `${type.slice(0, 100)}…` : type}"`;
}

/** body-parser's errors (bad JSON, too large, unreadable) as the JSON errors every route answers. */
function describeBodyError(error: unknown, acceptsNdjson: boolean): HttpException {
  const e = error as { type?: string; status?: number; limit?: number };
  if (e?.type === 'entity.parse.failed')
    return new BadRequestException(`body is not valid JSON${acceptsNdjson ? ` (send NDJSON, one sample per line, with Content-Type: ${NDJSON_TYPE})` : ''}`);
  if (e?.type === 'entity.too.large') return new PayloadTooLargeException(`body is larger than ${e.limit} bytes (upload samples as NDJSON to send more)`);
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new HttpException('the body cannot be read', e.status);
  return new BadRequestException('the body cannot be read');
}
