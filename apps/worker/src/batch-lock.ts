import { randomBytes } from 'node:crypto';
import { LuaScript, RedisClient } from '@lib/queue';

/** KEYS: lock. ARGV: token. Frees the lock only if this holder still has it. */
const UNLOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** How long a holder that died keeps a batch locked (ms). */
const LOCK_TTL_MS = 30_000;

/**
 * Runs `work` holding a batch's lock (BatchKeys.lock), so that two workers never feed or drain
 * the same batch at once. Gives up at once when another holds it: that one is doing the work.
 * Returns undefined then.
 */
export async function withBatchLock<T>(redis: RedisClient, key: string, work: () => Promise<T>): Promise<T | undefined> {
  const token = randomBytes(8).toString('hex');
  if ((await redis.set(key, token, 'PX', LOCK_TTL_MS, 'NX')) === null) return undefined;
  try {
    return await work();
  } finally {
    await UNLOCK.run(redis, [key], [token]).catch(() => undefined);
  }
}
