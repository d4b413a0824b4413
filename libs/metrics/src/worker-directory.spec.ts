import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisKeys } from '@lib/queue';
import { deleteKeys, eventually, REDIS_URL } from '../../../test/support/gateway-harness';
import { WorkerDirectory, WorkerRecord } from './worker-directory';

const record = (id: string, queues: string[], startedAt = '2024-01-01T00:00:00.000Z'): WorkerRecord => ({
  id,
  hostname: 'h',
  pid: 1,
  queues,
  concurrency: Object.fromEntries(queues.map((q) => [q, 4])),
  in_flight: {},
  version: '0.1.0',
  started_at: startedAt,
  last_seen: new Date().toISOString(),
});

describe('WorkerDirectory (real Redis)', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = new IORedis(REDIS_URL, { lazyConnect: true });
  const directory = new WorkerDirectory(redis, new RedisKeys(prefix));

  afterAll(async () => {
    await deleteKeys(`${prefix}:*`);
    redis.disconnect();
  });

  it('lists announced workers, drops one whose record expired, and removes one at once', async () => {
    await directory.announce(record('w1', ['openai']), 60_000);
    await directory.announce(record('w2', ['openai', 'google'], '2024-01-02T00:00:00.000Z'), 60_000);
    await directory.announce(record('short', ['anthropic'], '2024-01-03T00:00:00.000Z'), 60_000);
    expect((await directory.list()).map((w) => w.id)).toEqual(['w1', 'w2', 'short']);
    // Its TTL runs out (as when a worker dies without a word): forced, so no test waits a minute.
    expect(await redis.pttl(`${prefix}:worker:short`)).toBeGreaterThan(50_000);
    await redis.pexpire(`${prefix}:worker:short`, 1);
    await eventually(async () => !(await directory.list()).some((w) => w.id === 'short'), 5000, 'expiry');
    await directory.remove('w1');
    const left = await directory.list();
    expect(left).toEqual([expect.objectContaining({ id: 'w2', queues: ['openai', 'google'] })]);
    expect(WorkerDirectory.countByQueue(left, ['openai', 'google', 'anthropic'])).toEqual({ openai: 1, google: 1, anthropic: 0 });
    expect(await redis.zscore(`${prefix}:workers`, 'w1')).toBeNull();
  });
});
