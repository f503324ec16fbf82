// Serves the built portal (apps/portal/dist) at /portal: hashed assets cached for good, index.html for every
// other path under /portal (the portal routes in the browser), and a JSON 503 when it was never built.
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PORTAL_PREFIX = '/portal';

/**
 * Scripts, styles and fonts only from the service itself (nothing from a CDN); JSON-RPC to any endpoint,
 * since auditors choose the chain endpoint the checks run against.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  'connect-src *',
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function mountPortal(app: NestExpressApplication, dir: string): void {
  const index = join(dir, 'index.html');
  const securityHeaders = (response: Response) => {
    response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
  };
  app.useStaticAssets(dir, {
    prefix: `${PORTAL_PREFIX}/`,
    index: false,
    redirect: false,
    fallthrough: true,
    setHeaders: (response: Response, path: string) => {
      securityHeaders(response);
      response.setHeader('Cache-Control', path.includes(`${join(dir, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  app.use(PORTAL_PREFIX, (request: Request, response: Response, next: NextFunction) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return next();
    if (!existsSync(index)) {
      response.status(503).json({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'the portal is not built: run `npm run build:portal` (or set PORTAL_DIR to a built portal)',
      });
      return;
    }
    if (request.path.startsWith('/assets/')) {
      response
        .status(404)
        .json({ statusCode: 404, error: 'Not Found', message: `no portal asset ${request.path.slice('/assets/'.length)}` });
      return;
    }
    securityHeaders(response);
    response.setHeader('Cache-Control', 'no-cache');
    response.sendFile(index);
  });
}
