import { CanActivate, ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthenticatedRequest } from '../auth/authenticated-request';
import { Role } from '../auth/role';
import { ROLES_KEY } from '../auth/roles.decorator';
import { ApiKeyService } from './api-key.service';

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

/**
 * Checks `Authorization: Bearer <key>` against the stored key hashes on every request (no cache, so a
 * revoked key stops working at once). 401 for a missing, malformed, unknown or revoked key; 403 for a
 * key whose role the route does not allow. A key given to a public route is checked too: a wrong key is
 * a client bug worth reporting.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeyService: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]);
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    if (header === undefined) {
      if (roles === undefined) return true;
      throw new UnauthorizedException('this route needs an API key: Authorization: Bearer <key>');
    }
    const match = BEARER.exec(header);
    if (!match) throw new UnauthorizedException('the Authorization header must be "Bearer <key>"');
    const principal = await this.apiKeyService.authenticate(match[1]);
    if (!principal) throw new UnauthorizedException('unknown or revoked API key');
    request.principal = principal;
    if (roles !== undefined && !roles.includes(principal.role))
      throw new ForbiddenException(`this route needs a key with role ${roles.join(' or ')}; this key has role ${principal.role}`);
    return true;
  }
}
