import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorType, GatewayError } from '@lib/contracts';
import { ClientLimiter } from '@lib/ratelimit';
import { rateLimitIdentity } from '../common/client-identity';

export const CLIENT_LIMITER = Symbol('CLIENT_LIMITER');

/**
 * API_RATE_LIMIT_RPM per API key, shared by every API process. Every answer carries
 * X-RateLimit-Limit/Remaining/Reset (Reset in seconds until the budget is full again); a
 * refused request is a 429 with Retry-After. Without a limit configured it does nothing.
 */
@Injectable()
export class ClientRateLimitGuard implements CanActivate {
  constructor(@Inject(CLIENT_LIMITER) private readonly limiter: ClientLimiter | null) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.limiter) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<FastifyRequest>();
    const verdict = await this.limiter.check(rateLimitIdentity(req));
    const headers: Record<string, string> = {
      'X-RateLimit-Limit': String(verdict.limit),
      'X-RateLimit-Remaining': String(verdict.remaining),
      'X-RateLimit-Reset': String(verdict.resetSeconds),
    };
    if (verdict.allowed) {
      void http.getResponse<FastifyReply>().headers(headers);
      return true;
    }
    throw new GatewayError(
      ErrorType.TooManyRequests,
      `Too many requests: this API key may send ${verdict.limit} per minute; retry in ${verdict.retryAfterSeconds} s`,
      'rate_limit_exceeded',
      { limit_per_minute: verdict.limit, retry_after_seconds: verdict.retryAfterSeconds },
      { ...headers, 'Retry-After': String(verdict.retryAfterSeconds) },
    );
  }
}
