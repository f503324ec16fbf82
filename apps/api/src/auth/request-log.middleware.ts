import { Logger } from '@nestjs/common';
import type { NextFunction, Response } from 'express';
import { AuthenticatedRequest } from './authenticated-request';

const logger = new Logger('HTTP');

/**
 * One structured line per request once answered: method, route pattern (not the URL: no query strings,
 * no identifiers), status, milliseconds and the id of the API key (never the key, a body or a header).
 */
export function requestLogMiddleware(request: AuthenticatedRequest, response: Response, next: NextFunction): void {
  const started = process.hrtime.bigint();
  response.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const route = (request.route as { path?: string } | undefined)?.path ?? '(unmatched)';
    logger.log(
      JSON.stringify({ method: request.method, route, status: response.statusCode, ms: Math.round(ms * 10) / 10, keyId: request.principal?.keyId ?? null }),
    );
  });
  next();
}
