import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { Role } from './role';

export const ROLES_KEY = 'lethe:roles';

/**
 * The roles that may call a route (on a handler or a controller). Without it a route is public; the
 * route x role test (test/api/auth.e2e-spec.ts) lists every route, so a new one cannot be left out.
 */
export function Roles(...roles: Role[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(ROLES_KEY, roles),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'no key, or an unknown or revoked one' }),
    ApiForbiddenResponse({ description: `the key's role is not one of: ${roles.join(', ')}` }),
  );
}
