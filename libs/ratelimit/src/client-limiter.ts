import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from '@lib/queue';
import { CLIENT_LUA } from './limiter-scripts';

const CLIENT = new LuaScript(CLIENT_LUA);

/** The answer for one request, with what the X-RateLimit-* headers say. */
export interface ClientVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the budget is full again. */
  resetSeconds: number;
  /** Seconds to wait before the next request can pass (0 when allowed). */
  retryAfterSeconds: number;
}

/**
 * Requests per minute per client (an API key, or the caller's address when the API runs
 * without keys), shared by every API process through Redis. A token bucket of `burst`
 * requests refilled at `rpm` per minute.
 */
export class ClientLimiter {
  private readonly emission: number;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly rpm: number,
    private readonly burst: number,
  ) {
    this.emission = 60_000 / rpm;
  }

  async check(clientId: string): Promise<ClientVerdict> {
    const key = `${this.prefix}:rl:client:${clientId}`;
    const [allowed, remaining, resetMs, retryMs] = (await CLIENT.run(this.redis, [key], [this.emission, this.burst])) as number[];
    return {
      allowed: allowed === 1,
      limit: this.rpm,
      remaining: Math.max(0, remaining),
      resetSeconds: Math.ceil(resetMs / 1000),
      retryAfterSeconds: allowed === 1 ? 0 : Math.max(1, Math.ceil(retryMs / 1000)),
    };
  }
}
