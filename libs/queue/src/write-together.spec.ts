import IORedis from 'ioredis';
import { writeTogether } from './write-together';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Counts the system-call-level writes of a real ioredis connection. */
describe('writeTogether', () => {
  const redis = new IORedis(REDIS_URL);
  afterAll(() => redis.disconnect());

  function countWrites(): { writes: number; chunks: number } {
    const stream = (redis as unknown as { stream: { _write: (...a: unknown[]) => void; _writev?: (chunks: unknown[], cb: unknown) => void } }).stream;
    const seen = { writes: 0, chunks: 0 };
    const write = stream._write.bind(stream);
    const writev = stream._writev!.bind(stream);
    stream._write = (...a: unknown[]) => {
      seen.writes++;
      seen.chunks++;
      write(...a);
    };
    stream._writev = (chunks: unknown[], cb: unknown) => {
      seen.writes++;
      seen.chunks += chunks.length;
      writev(chunks, cb);
    };
    return seen;
  }

  it('sends the commands written inside it in one write, and their replies come back in order', async () => {
    await redis.ping();
    const seen = countWrites();
    const replies = await writeTogether(redis, () => Promise.all([redis.echo('a'), redis.echo('b'), redis.echo('c')]));
    expect(replies).toEqual(['a', 'b', 'c']);
    expect(seen).toEqual({ writes: 1, chunks: 3 });
  });

  it('control: outside it ioredis writes each command as it is sent', async () => {
    await redis.ping();
    const seen = countWrites();
    await Promise.all([redis.echo('a'), redis.echo('b')]);
    expect(seen.writes).toBe(2);
  });

  it('uncorks when the writer throws', async () => {
    expect(() =>
      writeTogether(redis, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(await redis.echo('after')).toBe('after');
  });
});
