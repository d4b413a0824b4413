import IORedis from 'ioredis';
import { coalesceWrites, writeTogether } from './write-together';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Counts the system-call-level writes of a real ioredis connection from now on. */
function countWrites(client: IORedis): { writes: number; chunks: number } {
  const stream = (client as unknown as { stream: { _write: (...a: unknown[]) => void; _writev?: (chunks: unknown[], cb: unknown) => void } }).stream;
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

describe('writeTogether', () => {
  const redis = new IORedis(REDIS_URL, { lazyConnect: true });
  afterAll(() => redis.disconnect());

  it('sends the commands written inside it in one write, and their replies come back in order', async () => {
    await redis.ping();
    const seen = countWrites(redis);
    const replies = await writeTogether(redis, () => Promise.all([redis.echo('a'), redis.echo('b'), redis.echo('c')]));
    expect(replies).toEqual(['a', 'b', 'c']);
    expect(seen).toEqual({ writes: 1, chunks: 3 });
  });

  it('control: outside it ioredis writes each command as it is sent', async () => {
    await redis.ping();
    const seen = countWrites(redis);
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

  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  /** Long enough after the last writing turn that the connection is not busy (BUSY_GAP_MS). */
  const quiet = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

  beforeAll(async () => {
    coalesceWrites(redis); // before connecting: the hook goes on the stream at 'connect'
    await redis.connect();
    await redis.ping();
  });

  it("a turn's first command is written at once, the rest of the turn in one write when it ends", async () => {
    await quiet();
    const seen = countWrites(redis);
    const first = redis.echo('a');
    expect(seen).toEqual({ writes: 1, chunks: 1 }); // not held back
    const rest = [redis.echo('b'), redis.echo('c'), redis.echo('d')];
    expect(seen.writes).toBe(1); // held until the turn ends
    expect(await Promise.all([first, ...rest])).toEqual(['a', 'b', 'c', 'd']);
    expect(seen).toEqual({ writes: 2, chunks: 4 });
  });

  it('commands sent from separate callbacks of one turn leave together; the socket is uncorked after', async () => {
    await quiet();
    const seen = countWrites(redis);
    // Three timers due at once run in one turn's timer phase, each a callback of its own.
    const replies = await Promise.all(['x', 'y', 'z'].map((v) => new Promise((resolve) => setTimeout(() => resolve(redis.echo(v)), 5))));
    expect(replies).toEqual(['x', 'y', 'z']);
    expect(seen).toEqual({ writes: 2, chunks: 3 });
    const stream = (redis as unknown as { stream: { writableCorked: number } }).stream;
    expect(stream.writableCorked).toBe(0);
  });

  it('one command per turn goes out at once each time, and writeTogether still works inside a turn', async () => {
    const seen = countWrites(redis);
    for (const v of ['1', '2', '3']) {
      await quiet();
      expect(await redis.echo(v)).toBe(v);
    }
    expect(seen).toEqual({ writes: 3, chunks: 3 });
    await quiet();
    const together = await Promise.all([redis.echo('p'), writeTogether(redis, () => Promise.all([redis.echo('q'), redis.echo('r')]))]);
    expect(together).toEqual(['p', ['q', 'r']]);
  });

  it('a writeTogether group that opens a turn leaves at once, in one write; a later group of the turn waits for its end', async () => {
    await quiet();
    const seen = countWrites(redis);
    const first = writeTogether(redis, () => Promise.all([redis.echo('g1'), redis.echo('g2'), redis.echo('g3')]));
    expect(seen).toEqual({ writes: 1, chunks: 3 });
    const second = writeTogether(redis, () => Promise.all([redis.echo('h1'), redis.echo('h2')]));
    expect(seen.writes).toBe(1);
    expect(await Promise.all([first, second])).toEqual([
      ['g1', 'g2', 'g3'],
      ['h1', 'h2'],
    ]);
    expect(seen).toEqual({ writes: 2, chunks: 5 });
  });

  it('busy (turns that write follow each other): the first command of a turn waits for its end too', async () => {
    // A gap of 2 s counts as busy here, so that a slow test machine cannot make it quiet.
    const busyClient = new IORedis(REDIS_URL, { lazyConnect: true });
    try {
      coalesceWrites(busyClient, { busyGapMs: 2_000 });
      await busyClient.connect();
      await busyClient.ping(); // the connection's first writing turn (it was not busy before)
      const seen = countWrites(busyClient);
      await nextTurn();
      const held = [busyClient.echo('t1'), busyClient.echo('t2')];
      expect(seen.writes).toBe(0); // held, the first one too
      expect(await Promise.all(held)).toEqual(['t1', 't2']);
      expect(seen).toEqual({ writes: 1, chunks: 2 });
    } finally {
      busyClient.disconnect();
    }
  });

  it('a reconnected client is coalesced too', async () => {
    redis.disconnect(true);
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    await quiet();
    const seen = countWrites(redis);
    const replies = await Promise.all([redis.echo('m'), redis.echo('n'), redis.echo('o')]);
    expect(replies).toEqual(['m', 'n', 'o']);
    expect(seen).toEqual({ writes: 2, chunks: 3 });
  });
});
