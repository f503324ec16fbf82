import { BadRequestException, CallHandler, ExecutionContext, Injectable, NestInterceptor, StreamableFile } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import type { Response } from 'express';
import { Observable, catchError, from, mergeMap, of, throwError } from 'rxjs';
import { AuthenticatedRequest } from './authenticated-request';
import { NDJSON_TYPE } from '../common/media-types';
import { IdempotencyService, SECRET_IN_RESPONSE, idempotencyRoute, idempotencyScope, readIdempotencyKey } from './idempotency.service';

/**
 * `Idempotency-Key` on POSTs: the first answer (2xx) is stored and a retry with the same key, route and
 * body gets it again (with `Idempotent-Replayed: true`) without running anything; another body or route
 * with the same key is a 409. Failed requests are not stored, so they can be retried. Keys are per
 * caller. Bodies are compared by a MAC of the SHA-256 of their canonical JSON. Answers are stored sealed
 * (IdempotencyClaim); a route marked @SecretInResponse keeps no secret, and a retry of it is a 409. A
 * streamed (NDJSON) body can only be compared once read, so the upload route handles its key itself.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    private readonly idempotencyService: IdempotencyService,
    private readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (request.method !== 'POST') return next.handle();
    const key = readIdempotencyKey(request);
    if (key === undefined) return next.handle();
    // A streamed body is hashed as it is read: the upload route handles its key (SampleUploadService).
    if (request.is(NDJSON_TYPE)) return next.handle();
    if (!request.is('application/json')) throw new BadRequestException('header Idempotency-Key needs a JSON (or NDJSON) body');
    const response = context.switchToHttp().getResponse<Response>();
    const secretField = this.reflector.get<string | undefined>(SECRET_IN_RESPONSE, context.getHandler());
    const claim = await this.idempotencyService.claimFor(idempotencyScope(request), key, idempotencyRoute(request));
    const decision = await this.idempotencyService.begin(claim, digestBody(request.body));
    if (decision.kind === 'replay') {
      response.setHeader('Idempotent-Replayed', 'true');
      return of(decision.body);
    }
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        if (body instanceof StreamableFile) await this.idempotencyService.release(claim); // not stored: cannot be replayed
        else await this.idempotencyService.complete(claim, response.statusCode, body, { secretField });
        return body;
      }),
      catchError((error: unknown) => from(this.idempotencyService.release(claim)).pipe(mergeMap(() => throwError(() => error)))),
    );
  }
}

/** SHA-256 of the body's RFC 8785 form, so key order and spacing do not make two bodies differ. */
function digestBody(body: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(body ?? null);
  } catch {
    text = undefined; // e.g. a number JSON.parse made Infinity: fall back to plain JSON
  }
  return createHash('sha256').update(text ?? JSON.stringify(body) ?? '').digest('hex');
}
