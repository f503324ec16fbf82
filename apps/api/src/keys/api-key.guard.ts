import { CanActivate, ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthenticatedRequest } from '../auth/authenticated-request';
import { Role } from '../auth/role';
import { ROLES_KEY } from '../auth/roles.decorator';
import { ApiKeyAuthenticator } from './api-key.authenticator';

/**
 * Checks `Authorization: Bearer <key>` on every request (ApiKeyAuthenticator: a valid key is looked up each
 * time, so a revoked key stops working at once). 401 for a missing, malformed, unknown or revoked key; 403
 * for a key whose role the route does not allow. A key given to a public route is checked too: a wrong key
 * is a client bug worth reporting.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: ApiKeyAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]);
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const check = await this.authenticator.check(request);
    switch (check.kind) {
      case 'none':
        if (roles === undefined) return true;
        throw new UnauthorizedException('this route needs an API key: Authorization: Bearer <key>');
      case 'malformed':
        throw new UnauthorizedException('the Authorization header must be "Bearer <key>"');
      case 'unknown':
        throw new UnauthorizedException('unknown or revoked API key');
      case 'valid':
        request.principal = check.principal;
        if (roles !== undefined && !roles.includes(check.principal.role))
          throw new ForbiddenException(`this route needs a key with role ${roles.join(' or ')}; this key has role ${check.principal.role}`);
        return true;
    }
  }
}
