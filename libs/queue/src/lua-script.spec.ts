import IORedis from 'ioredis';
import { LuaScript } from './lua-script';

describe('LuaScript (real Redis)', () => {
  const redis = new IORedis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', { lazyConnect: true });
  afterAll(() => redis.disconnect());

  it('runs by SHA, loading the source once when Redis does not have it', async () => {
    const script = new LuaScript(`return {KEYS[1], ARGV[1], '${Date.now()}-${Math.random()}'}`);
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    const first = (await script.run(redis, ['k'], [7])) as string[];
    expect(first.slice(0, 2)).toEqual(['k', '7']);
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(redis, ['k2'], ['x'])).toEqual(['k2', 'x', first[2]]);
  });

  it('passes script errors through', async () => {
    await expect(new LuaScript("return redis.call('NOSUCHCOMMAND')").run(redis, [], [])).rejects.toThrow(/Unknown Redis command|unknown command/i);
  });
});
