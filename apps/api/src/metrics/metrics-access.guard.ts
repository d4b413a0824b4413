import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BearerKeys } from '../common/bearer-keys';

/**
 * GET /metrics takes an API key or an admin key (Prometheus sends one with `authorization:`
 * in its scrape config), unless METRICS_PUBLIC=true. Without API_KEYS the API is open, and so
 * is this (it then listens on loopback only).
 */
@Injectable()
export class MetricsAccessGuard implements CanActivate {
  private readonly open: boolean;
  private readonly keys: BearerKeys;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.open = config.metricsPublic || config.apiKeys.length === 0;
    this.keys = new BearerKeys([...config.apiKeys, ...config.adminApiKeys]);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.open) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    this.keys.check(header, 'Missing API key: send Authorization: Bearer <key>, or set METRICS_PUBLIC=true');
    return true;
  }
}
