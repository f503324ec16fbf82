import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { Request } from 'express';
import { Principal } from './role';

/** A request once ApiKeyGuard ran: `principal` is set when a valid key was given. */
export interface AuthenticatedRequest extends Request {
  principal?: Principal;
}

/** The caller of a route that requires a role (undefined on public routes called without a key). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal | undefined => {
  return ctx.switchToHttp().getRequest<AuthenticatedRequest>().principal;
});
