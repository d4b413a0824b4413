import IORedis, { RedisOptions } from 'ioredis';
import { redact } from '@lib/config';

/** Options every gateway connection shares: BullMQ needs maxRetriesPerRequest null on workers. */
export function createRedis(url: string, purpose: string, extra: RedisOptions = {}): IORedis {
  return new IORedis(url, { connectionName: `gw-${purpose}`, enableReadyCheck: true, ...extra });
}

export class RedisUnavailableError extends Error {}

/**
 * Fails fast with one line that says how to get a Redis, instead of a stack trace, when Redis
 * is not reachable at start-up. Returns a warning when the eviction policy would lose jobs.
 */
export async function checkRedis(url: string, timeoutMs = 3000): Promise<{ warnings: string[] }> {
  const client = new IORedis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    const warnings: string[] = [];
    try {
      const policy = (await client.config('GET', 'maxmemory-policy')) as string[];
      if (policy[1] && policy[1] !== 'noeviction') {
        warnings.push(
          `Redis maxmemory-policy is "${policy[1]}": Redis may evict queued jobs under memory pressure. ` +
            'Set it to noeviction (redis-cli config set maxmemory-policy noeviction).',
        );
      }
    } catch {
      // CONFIG may be disabled on managed Redis; nothing to check then.
    }
    return { warnings };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RedisUnavailableError(
      `Cannot reach Redis at ${redact(url)} (${reason}). Start one with ` +
        '`redis-server --daemonize yes --port 6379` or `docker compose up -d redis`, or point REDIS_URL at yours.',
    );
  } finally {
    client.disconnect();
  }
}
