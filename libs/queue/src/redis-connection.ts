import IORedis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { GatewayConfig, redact } from '@lib/config';

/**
 * A connection to the one Redis at REDIS_URL, or to a Redis Cluster (REDIS_CLUSTER_NODES).
 * Both speak every command the gateway sends; multi-key commands, Lua and pipelines must stay
 * within one hash slot (see RedisKeys) to work on a cluster.
 */
export type RedisClient = IORedis | Cluster;

/** The two settings that say where Redis is; a GatewayConfig is one. */
export type RedisTarget = Pick<GatewayConfig, 'redisUrl' | 'redisClusterNodes'>;

export function isRedisCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * Every gateway connection is made here, so that REDIS_CLUSTER_NODES switches all of them.
 * `extra`: BullMQ workers need `maxRetriesPerRequest: null`.
 */
export function createRedis(target: RedisTarget, purpose: string, extra: RedisOptions = {}): RedisClient {
  const options: RedisOptions = { connectionName: `gw-${purpose}`, enableReadyCheck: true, ...extra };
  if (!target.redisClusterNodes) return new IORedis(target.redisUrl, options);
  return new Cluster(target.redisClusterNodes, clusterOptions(target.redisUrl, options));
}

/** A second connection like `client` (e.g. a subscriber, which can send nothing else). */
export function duplicateRedis(client: RedisClient, purpose: string): RedisClient {
  const connectionName = `gw-${purpose}`;
  if (!isRedisCluster(client)) return client.duplicate({ connectionName });
  return client.duplicate([], { redisOptions: { ...client.options.redisOptions, connectionName } });
}

/**
 * In cluster mode REDIS_URL supplies only the credentials and TLS; each node is reached at the
 * address the cluster announces for it. Options that belong to the cluster client as a whole
 * move up a level (ioredis ignores them inside redisOptions).
 */
function clusterOptions(url: string, options: RedisOptions): ClusterOptions {
  const { enableOfflineQueue, enableReadyCheck, lazyConnect, retryStrategy, ...nodeOptions } = options;
  const u = new URL(url);
  const redisOptions: ClusterOptions['redisOptions'] = { ...nodeOptions };
  if (u.username) redisOptions.username = decodeURIComponent(u.username);
  if (u.password) redisOptions.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') redisOptions.tls = {};
  const cluster: ClusterOptions = { redisOptions };
  if (enableOfflineQueue !== undefined) cluster.enableOfflineQueue = enableOfflineQueue;
  if (enableReadyCheck !== undefined) cluster.enableReadyCheck = enableReadyCheck;
  if (lazyConnect !== undefined) cluster.lazyConnect = lazyConnect;
  if (retryStrategy !== undefined) cluster.clusterRetryStrategy = retryStrategy;
  return cluster;
}

export class RedisUnavailableError extends Error {}

/**
 * Fails fast with one line that says how to get a Redis, instead of a stack trace, when Redis
 * is not reachable at start-up. Returns a warning when the eviction policy would lose jobs.
 */
export async function checkRedis(target: RedisTarget, timeoutMs = 3000): Promise<{ warnings: string[] }> {
  const client = createRedis(target, 'startup-check', {
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
    // On a cluster every master holds queues: each one's policy counts.
    const servers = isRedisCluster(client) ? client.nodes('master') : [client];
    if (isRedisCluster(client)) {
      const info = await client.cluster('INFO');
      if (!/cluster_state:ok/.test(info)) throw new Error('cluster_state is not ok (slots unassigned or nodes failing)');
    }
    for (const server of servers) {
      const policy = await maxmemoryPolicy(server);
      if (policy && policy !== 'noeviction') {
        const where = isRedisCluster(client) ? ` on ${server.options.host}:${server.options.port}` : '';
        warnings.push(
          `Redis maxmemory-policy is "${policy}"${where}: Redis may evict queued jobs under memory pressure. ` +
            'Set it to noeviction (redis-cli config set maxmemory-policy noeviction).',
        );
      }
    }
    return { warnings };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RedisUnavailableError(
      target.redisClusterNodes
        ? `Cannot reach the Redis Cluster at ${target.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')} (${reason}). ` +
            'Check REDIS_CLUSTER_NODES (host:port seeds), and REDIS_URL for its password and TLS.'
        : `Cannot reach Redis at ${redact(target.redisUrl)} (${reason}). Start one with ` +
            '`redis-server --daemonize yes --port 6379` or `docker compose up -d redis`, or point REDIS_URL at yours.',
    );
  } finally {
    client.disconnect();
  }
}

/** CONFIG may be disabled on managed Redis: undefined then, and nothing to check. */
async function maxmemoryPolicy(server: IORedis): Promise<string | undefined> {
  try {
    const policy = (await server.config('GET', 'maxmemory-policy')) as string[];
    return policy[1];
  } catch {
    return undefined;
  }
}
