import IORedis from 'ioredis';
import { coalesceWrites, writeTogether } from './write-together';

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

describe('coalesceWrites', () => {
  const redis = new IORedis(REDIS_URL, { lazyConnect: true });
  afterAll(() => redis.disconnect());

  type Counted = { writes: number; chunks: number };
  function countWrites(): Counted {
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
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  beforeAll(async () => {
    coalesceWrites(redis); // before connecting: the hook goes on the stream at 'connect'
    await redis.connect();
    await redis.ping();
  });

  it("a turn's first command is written at once, the rest of the turn in one write when it ends", async () => {
    await nextTurn();
    const seen = countWrites();
    const first = redis.echo('a');
    expect(seen).toEqual({ writes: 1, chunks: 1 }); // not held back
    const rest = [redis.echo('b'), redis.echo('c'), redis.echo('d')];
    expect(seen.writes).toBe(1); // held until the turn ends
    expect(await Promise.all([first, ...rest])).toEqual(['a', 'b', 'c', 'd']);
    expect(seen).toEqual({ writes: 2, chunks: 4 });
  });

  it('commands sent from separate callbacks of one turn leave together; the socket is uncorked after', async () => {
    await nextTurn();
    const seen = countWrites();
    // Three timers due at once run in one turn's timer phase, each a callback of its own.
    const replies = await Promise.all(['x', 'y', 'z'].map((v) => new Promise((resolve) => setTimeout(() => resolve(redis.echo(v)), 5))));
    expect(replies).toEqual(['x', 'y', 'z']);
    expect(seen).toEqual({ writes: 2, chunks: 3 });
    const stream = (redis as unknown as { stream: { writableCorked: number } }).stream;
    expect(stream.writableCorked).toBe(0);
  });

  it('one command per turn goes out at once each time, and writeTogether still works inside a turn', async () => {
    await nextTurn();
    const seen = countWrites();
    for (const v of ['1', '2', '3']) expect(await redis.echo(v)).toBe(v);
    expect(seen).toEqual({ writes: 3, chunks: 3 });
    await nextTurn();
    const together = await Promise.all([redis.echo('p'), writeTogether(redis, () => Promise.all([redis.echo('q'), redis.echo('r')]))]);
    expect(together).toEqual(['p', ['q', 'r']]);
  });

  it('a reconnected client is coalesced too', async () => {
    redis.disconnect(true);
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    await nextTurn();
    const seen = countWrites();
    const replies = await Promise.all([redis.echo('m'), redis.echo('n'), redis.echo('o')]);
    expect(replies).toEqual(['m', 'n', 'o']);
    expect(seen).toEqual({ writes: 2, chunks: 3 });
  });
});
