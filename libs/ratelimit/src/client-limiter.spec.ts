import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { ClientLimiter } from './client-limiter';

describe('ClientLimiter (real Redis)', () => {
  const redis = new IORedis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', { lazyConnect: true });
  const prefix = `cl${randomBytes(4).toString('hex')}`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('lets a burst through, then refuses with when to retry; another client has its own budget', async () => {
    const limiter = new ClientLimiter(redis, prefix, 60, 3);
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.check('key:a'));
    expect(verdicts.map((v) => [v.allowed, v.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(verdicts[3].retryAfterSeconds).toBe(1);
    expect(verdicts[3].resetSeconds).toBe(3);
    expect(verdicts[0].retryAfterSeconds).toBe(0);
    expect((await limiter.check('key:b')).allowed).toBe(true);
  });

  it('two API processes share one budget', async () => {
    const other = new IORedis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
    try {
      const [a, b] = [new ClientLimiter(redis, prefix, 60, 2), new ClientLimiter(other, prefix, 60, 2)];
      const allowed = await Promise.all([a.check('key:c'), b.check('key:c'), a.check('key:c'), b.check('key:c')]);
      expect(allowed.filter((v) => v.allowed)).toHaveLength(2);
    } finally {
      other.disconnect();
    }
  });
});
