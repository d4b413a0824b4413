import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ErrorType, GatewayError } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { AdminSession } from '../admin/admin-session';

/**
 * Operator-only routes (GET /v1/workers): `Authorization: Bearer <key>` with a key from
 * ADMIN_API_KEYS. Such routes are also @Public(), since admin keys are not API keys. Without
 * ADMIN_API_KEYS they answer 403 saying how to turn them on.
 */
@Injectable()
export class AdminKeyGuard implements CanActivate {
  private readonly keys: AdminSession;
  private readonly enabled: boolean;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.keys = new AdminSession(config.adminApiKeys);
    this.enabled = config.adminApiKeys.length > 0;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.enabled) {
      throw new GatewayError(
        ErrorType.Forbidden,
        'This endpoint is for operators and is off: set ADMIN_API_KEYS=<key>[,<key>] (each at least 16 characters) and send Authorization: Bearer <admin key>',
        'admin_disabled',
      );
    }
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
    if (!bearer) throw new GatewayError(ErrorType.Unauthorized, 'Missing admin key: send Authorization: Bearer <admin key>', 'missing_api_key');
    if (!this.keys.isAdminKey(bearer)) {
      throw new GatewayError(ErrorType.Forbidden, 'This endpoint needs an admin key (one of ADMIN_API_KEYS)', 'admin_key_required');
    }
    return true;
  }
}
