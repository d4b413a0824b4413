import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BearerKeys } from './bearer-keys';
import { IS_PUBLIC } from './public.decorator';

/**
 * `Authorization: Bearer <key>` against API_KEYS. Keys are compared as SHA-256 digests in
 * constant time, so neither their content nor their length leaks through timing. With no keys
 * configured every request passes; the API then binds to loopback only (see main.ts).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: BearerKeys;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly reflector: Reflector,
  ) {
    this.keys = new BearerKeys(config.apiKeys);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keys.size === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    this.keys.check(context.switchToHttp().getRequest<FastifyRequest>().headers.authorization);
    return true;
  }
}
