import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ErrorType, GatewayError } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { IS_PUBLIC } from './public.decorator';

/**
 * `Authorization: Bearer <key>` against API_KEYS. Keys are compared as SHA-256 digests in
 * constant time, so neither their content nor their length leaks through timing. With no keys
 * configured every request passes; the API then binds to loopback only (see main.ts).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly digests: Buffer[];

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly reflector: Reflector,
  ) {
    this.digests = config.apiKeys.map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.digests.length === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) {
      throw new GatewayError(ErrorType.Unauthorized, 'Missing API key: send Authorization: Bearer <key>', 'missing_api_key');
    }
    const given = digest(match[1]);
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(given, known) || ok;
    if (!ok) throw new GatewayError(ErrorType.Unauthorized, 'Invalid API key', 'invalid_api_key');
    return true;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
