import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection';

/**
 * A Lua script run by its SHA1 (EVALSHA), sent in full only when a Redis node does not have it
 * yet (NOSCRIPT, e.g. after a restart or on a cluster node it has not run on). EVAL with the
 * source would send and hash the whole script on every call: scripts on a job's path should be
 * LuaScripts.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
