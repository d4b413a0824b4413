import { randomBytes } from 'node:crypto';
import { Job, Queue, RedisClient, Worker, WorkerOptions } from 'bullmq';
import IORedis from 'ioredis';
import { StartFirstWorker } from './start-first-worker';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real BullMQ on the real Redis. Right after a worker has fetched a job, Redis is paused
 * (CLIENT PAUSE) for 1.5 s: a worker that starts the job before fetching again starts it
 * during the pause; BullMQ's own loop waits for its next fetch, so only after the pause.
 */
describe('StartFirstWorker', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const connections: IORedis[] = [];
  const connect = () => {
    const c = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  let admin: IORedis;
  let queue: Queue;

  beforeAll(() => {
    admin = connect();
    queue = new Queue('start-first', { connection: connect(), prefix });
  });

  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    for (const c of connections) c.disconnect();
  });

  /** Adds one job, starts a worker of `kind` (concurrency 4) that pauses Redis right after its first fetch; was the job started 500 ms into the pause? */
  async function startedDuringPause(kind: 'start-first' | 'bullmq'): Promise<boolean> {
    let started = false;
    let pauseOnce = true;
    const afterFetch = async (job: Job | undefined) => {
      if (job && pauseOnce) {
        pauseOnce = false;
        await admin.client('PAUSE', 1500, 'ALL');
      }
    };
    const processor = async () => {
      started = true;
    };
    const options: WorkerOptions = { connection: connect(), prefix, concurrency: 4, autorun: false };
    const Base: typeof Worker = kind === 'start-first' ? StartFirstWorker : Worker;
    class Probe extends Base {
      protected override async moveToActive(client: RedisClient, token: string, name?: string): Promise<Job> {
        const job = await super.moveToActive(client, token, name);
        await afterFetch(job);
        return job;
      }
    }
    await queue.add('job', { kind });
    const worker = new Probe('start-first', processor, options);
    void worker.run();
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (!pauseOnce) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    await sleep(500);
    const during = started;
    await sleep(1200); // the pause ends
    await worker.close();
    return during;
  }

  it('starts a fetched job before fetching the next one', async () => {
    expect(await startedDuringPause('start-first')).toBe(true);
  });

  it("control: BullMQ's own loop fetches again first (the reason for the class)", async () => {
    expect(await startedDuringPause('bullmq')).toBe(false);
  });

  it('runs many jobs at its concurrency, each exactly once', async () => {
    const seen: number[] = [];
    let running = 0;
    let most = 0;
    const worker = new StartFirstWorker<{ i: number }>(
      'start-first-many',
      async (job) => {
        running++;
        most = Math.max(most, running);
        await sleep(20);
        seen.push(job.data.i);
        running--;
      },
      { connection: connect(), prefix, concurrency: 8 },
    );
    const many = new Queue('start-first-many', { connection: connect(), prefix });
    try {
      await many.addBulk(Array.from({ length: 200 }, (_, i) => ({ name: 'job', data: { i } })));
      const deadline = Date.now() + 30_000;
      while (seen.length < 200 && Date.now() < deadline) await sleep(20);
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(most).toBe(8);
    } finally {
      await worker.close();
      await many.obliterate({ force: true });
      await many.close();
    }
  });
});
