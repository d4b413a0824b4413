import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { ExactCache } from './exact-cache';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const vec = (...values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);

describe('ExactCache (real Redis)', () => {
  const redis = new IORedis(REDIS_URL, { lazyConnect: true });
  const prefix = `tcache${randomBytes(4).toString('hex')}`;
  const scope = { provider: 'openai', model: 'text-embedding-3-small', parameters: { dimensions: 2, user: 'u' } };

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('answers hits by position, misses as undefined; parameter order does not matter, their values do', async () => {
    const cache = new ExactCache(redis, prefix, { ttlSeconds: 60, maxEntries: 100 });
    await cache.put(scope, [
      { text: 'a', vector: vec(1, 2) },
      { text: 'b', vector: vec(3, 4) },
    ]);
    expect(await cache.get(scope, ['b', 'x', 'a'])).toEqual([vec(3, 4), undefined, vec(1, 2)]);
    expect(await cache.get({ ...scope, parameters: { user: 'u', dimensions: 2 } }, ['a'])).toEqual([vec(1, 2)]);
    expect(await cache.get({ ...scope, parameters: { dimensions: 3, user: 'u' } }, ['a'])).toEqual([undefined]);
    expect(await cache.get({ ...scope, model: 'text-embedding-3-large' }, ['a'])).toEqual([undefined]);
    const [key] = await redis.keys(`${prefix}:emb:{openai:text-embedding-3-small}:[0-9a-f]*`);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('keeps at most maxEntries per model, evicting the oldest', async () => {
    const bounded = { ...scope, model: 'bounded' };
    const cache = new ExactCache(redis, prefix, { ttlSeconds: 60, maxEntries: 3 });
    for (const text of ['1', '2', '3', '4', '5']) await cache.put(bounded, [{ text, vector: vec(Number(text), 0) }]);
    expect(await cache.get(bounded, ['1', '2', '3', '4', '5'])).toEqual([undefined, undefined, vec(3, 0), vec(4, 0), vec(5, 0)]);
    expect(await redis.keys(`${prefix}:emb:{openai:bounded}:*`)).toHaveLength(4); // 3 entries + the index
  });

  it('is off with a TTL of 0: nothing stored, nothing found', async () => {
    const cache = new ExactCache(redis, prefix, { ttlSeconds: 0, maxEntries: 100 });
    await cache.put({ ...scope, model: 'off' }, [{ text: 'a', vector: vec(1, 2) }]);
    expect(await cache.get({ ...scope, model: 'off' }, ['a'])).toEqual([undefined]);
    expect(await redis.keys(`${prefix}:emb:{openai:off}:*`)).toEqual([]);
  });
});
