import { randomBytes } from 'node:crypto';
import { Job, Queue, RedisClient, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { StartFirstWorker } from './start-first-worker';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Real BullMQ on the real Redis. */
describe('StartFirstWorker', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const connections: IORedis[] = [];
  const connect = () => {
    const c = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };

  afterAll(() => {
    for (const c of connections) c.disconnect();
  });

  /** Closes a test's worker, then removes its queue. */
  async function stop(queue: Queue, worker: Worker): Promise<void> {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }

  /**
   * 20 jobs wait when a worker of `kind` with concurrency 20 starts: how many had it fetched
   * when it started the first one?
   */
  async function fetchedBeforeFirstStart(kind: 'start-first' | 'bullmq'): Promise<number> {
    const name = `burst-${kind}`;
    const queue = new Queue(name, { connection: connect(), prefix });
    await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'job', data: { i } })));
    let fetched = 0;
    let atFirstStart = -1;
    let done = 0;
    const Base: typeof Worker = kind === 'start-first' ? StartFirstWorker : Worker;
    class Probe extends Base {
      protected override async moveToActive(client: RedisClient, token: string, jobName?: string): Promise<Job> {
        const job = await super.moveToActive(client, token, jobName);
        if (job) fetched++;
        return job;
      }
    }
    const worker = new Probe(
      name,
      async () => {
        if (atFirstStart < 0) atFirstStart = fetched;
        await sleep(5);
        done++;
      },
      { connection: connect(), prefix, concurrency: 20 },
    );
    try {
      const deadline = Date.now() + 20_000;
      while (done < 20 && Date.now() < deadline) await sleep(10);
      expect(done).toBe(20);
      return atFirstStart;
    } finally {
      await stop(queue, worker);
    }
  }

  it('starts a fetched job before it fetches the next one', async () => {
    expect(await fetchedBeforeFirstStart('start-first')).toBe(1);
  });

  it("control: BullMQ's own loop fetches a job for every free slot before it starts the first", async () => {
    expect(await fetchedBeforeFirstStart('bullmq')).toBe(20);
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
      await stop(many, worker);
    }
  });

  describe('an idle worker fetches behind its wake-up (moveToActive queued behind BZPOPMIN)', () => {
    /** A worker of concurrency 4 on its own queue, idle once it has blocked on the empty queue. */
    async function idleWorker(name: string, processor: (job: Job, token?: string) => Promise<unknown>, fetchHoldMs?: number) {
      const queue = new Queue(name, { connection: connect(), prefix });
      const worker = new StartFirstWorker(name, processor, { connection: connect(), prefix, concurrency: 4, fetchHoldMs });
      await worker.waitUntilReady();
      await sleep(200);
      return { queue, worker };
    }

    it('jobs that arrive one at a time are fetched by the wait itself, each run once', async () => {
      const tokens: string[] = [];
      const { queue, worker } = await idleWorker('prefetch-single', async (_job, token) => void tokens.push(token!));
      try {
        for (let i = 0; i < 10; i++) {
          await queue.add('job', { i });
          const deadline = Date.now() + 5_000;
          while (tokens.length < i + 1 && Date.now() < deadline) await sleep(5);
          await sleep(50); // idle again: blocked with a fetch queued behind
        }
        expect(tokens).toHaveLength(10);
        // Prefetched jobs carry the prefetch's lock token (`<worker id>:p<n>`).
        expect(tokens.filter((t) => /:p\d+$/.test(t)).length).toBe(10);
        expect(await queue.getCompletedCount()).toBe(10);
      } finally {
        await stop(queue, worker);
      }
    });

    it("a job fetched by a wait is stamped with when it was handed out, not when the wait was written", async () => {
      const seen: Array<{ timestamp: number; processedOn?: number }> = [];
      const { queue, worker } = await idleWorker('prefetch-started', async (job) => void seen.push({ timestamp: job.timestamp, processedOn: job.processedOn }));
      try {
        for (let i = 0; i < 3; i++) {
          await sleep(150); // the wait (and the fetch behind it) was written at least this long before the job exists
          const job = await queue.add('job', { i });
          const deadline = Date.now() + 5_000;
          let stored = await queue.getJob(job.id!);
          while (!stored?.finishedOn && Date.now() < deadline) {
            await sleep(5);
            stored = await queue.getJob(job.id!);
          }
          expect(stored?.finishedOn).toBeDefined();
          expect(seen).toHaveLength(i + 1);
          // processedOn between the add and the finish, in the job hash and in the worker's copy.
          expect(stored!.processedOn).toBeGreaterThanOrEqual(stored!.timestamp);
          expect(stored!.processedOn).toBeLessThanOrEqual(stored!.finishedOn!);
          expect(seen[i].processedOn).toBe(stored!.processedOn);
        }
      } finally {
        await stop(queue, worker);
      }
    });

    it('closing while idle leaves no job stuck in active, even with a job arriving at that moment', async () => {
      for (let round = 0; round < 8; round++) {
        const name = `prefetch-close-${round}`;
        let ran = 0;
        const { queue, worker } = await idleWorker(name, async () => void ran++);
        try {
          // Added, so Redis has woken the wait and run the fetch behind it; its answer may still
          // be unread when the close starts (half the rounds close at once, half a tick later).
          const job = await queue.add('job', { round });
          if (round % 2 === 1) await new Promise((r) => setImmediate(r));
          await worker.close();
          const state = await job.getState();
          expect(['completed', 'waiting']).toContain(state);
          expect(await queue.getActiveCount()).toBe(0);
          expect(ran).toBe(state === 'completed' ? 1 : 0);
        } finally {
          await stop(queue, worker);
        }
      }
    });

    /** Wraps the worker's moveToActive script call: records which connection each fetch used. */
    function countFetches(worker: StartFirstWorker, onFetch: () => void = () => undefined) {
      const calls: Array<'blocking' | 'main'> = [];
      const scripts = worker.scripts as unknown as { moveToActive: (client: RedisClient, ...rest: unknown[]) => Promise<unknown> };
      const moveToActive = scripts.moveToActive.bind(scripts);
      let main: unknown;
      void worker.client.then((c) => (main = c));
      scripts.moveToActive = (client, ...rest) => {
        calls.push(client === main ? 'main' : 'blocking');
        onFetch();
        return moveToActive(client, ...rest);
      };
      return calls;
    }

    it('after a job starts, its next fetch also waits behind BZPOPMIN: no moveToActive of its own on an idle queue', async () => {
      let done = 0;
      const { queue, worker } = await idleWorker('prefetch-next', async () => void done++);
      const calls = countFetches(worker);
      try {
        for (let i = 0; i < 10; i++) {
          await queue.add('job', { i });
          const deadline = Date.now() + 5_000;
          while (done < i + 1 && Date.now() < deadline) await sleep(5);
          await sleep(50);
        }
        expect(done).toBe(10);
        // BullMQ's loop would call moveToActive on its main connection once per job (10).
        expect(calls.filter((c) => c === 'main')).toHaveLength(0);
        expect(calls.filter((c) => c === 'blocking').length).toBeGreaterThanOrEqual(10);
      } finally {
        await stop(queue, worker);
      }
    });

    it("a job's first calls (after a few awaits) are sent before the worker's next fetch", async () => {
      const order: string[] = [];
      const { queue, worker } = await idleWorker('prefetch-order', async (job) => {
        // A processor's first Redis call (the rate limiter) comes after a few awaits.
        await null;
        await null;
        await null;
        order.push(`job ${job.data.i}`);
      });
      countFetches(worker, () => order.push('fetch'));
      try {
        for (let i = 0; i < 5; i++) {
          await queue.add('job', { i });
          const deadline = Date.now() + 5_000;
          while (!order.includes(`job ${i}`) && Date.now() < deadline) await sleep(5);
          await sleep(50);
        }
        // Each job's work comes right after the fetch that brought it, before the next one (job
        // 0 came with the fetch made before the spy was in place).
        expect(order[0]).toBe('job 0');
        for (let i = 1; i < 5; i++) {
          const at = order.indexOf(`job ${i}`);
          expect(at).toBeGreaterThan(0);
          expect(order[at - 1]).toBe('fetch');
        }
      } finally {
        await stop(queue, worker);
      }
    });

    it('on a worker that was idle, the next fetch waits until the job says its provider call is out', async () => {
      const order: string[] = [];
      const turn = () => new Promise((r) => setImmediate(r));
      let worker!: StartFirstWorker;
      const idle = await idleWorker(
        'prefetch-held',
        async (job) => {
          order.push(`job ${job.data.i}`);
          // A rate gate's round trip and the provider call's write take event-loop turns.
          await turn();
          await turn();
          order.push(`released ${job.data.i}`);
          worker.releaseFetch();
          await sleep(20);
        },
        10_000, // no hold ends by its timer here
      );
      worker = idle.worker;
      countFetches(worker, () => order.push('fetch'));
      try {
        for (let i = 0; i < 4; i++) {
          await idle.queue.add('job', { i });
          const deadline = Date.now() + 5_000;
          while (!order.includes(`released ${i}`) && Date.now() < deadline) await sleep(5);
          await sleep(100);
        }
        for (let i = 0; i < 4; i++) {
          const started = order.indexOf(`job ${i}`);
          const released = order.indexOf(`released ${i}`);
          expect(released).toBeGreaterThan(started);
          // No fetch while the job starts; the fetch comes right after the release.
          expect(order.slice(started + 1, released)).toEqual([]);
          expect(order[released + 1]).toBe('fetch');
        }
      } finally {
        await stop(idle.queue, worker);
      }
    });

    it('a job that never releases the fetch holds it only fetchHoldMs: a second job starts while the first runs', async () => {
      const starts: Record<number, number> = {};
      const ends: Record<number, number> = {};
      const { queue, worker } = await idleWorker(
        'prefetch-held-timer',
        async (job) => {
          starts[job.data.i] = Date.now();
          await sleep(job.data.i === 0 ? 1_500 : 10);
          ends[job.data.i] = Date.now();
        },
        200,
      );
      try {
        await queue.add('job', { i: 0 });
        const deadline = Date.now() + 5_000;
        while (starts[0] === undefined && Date.now() < deadline) await sleep(2);
        await queue.add('job', { i: 1 });
        while (ends[1] === undefined && Date.now() < deadline) await sleep(5);
        expect(starts[1]).toBeDefined();
        // Fetched once the hold ran out, not when the first job ended.
        expect(starts[1] - starts[0]).toBeGreaterThanOrEqual(190);
        expect(ends[0]).toBeUndefined();
      } finally {
        await stop(queue, worker);
      }
    });

    it('a hold ends with its job: a worker of concurrency 1 waits for the next job as soon as one ends', async () => {
      const queue = new Queue('prefetch-held-c1', { connection: connect(), prefix });
      const starts: number[] = [];
      const ends: number[] = [];
      const worker = new StartFirstWorker(
        'prefetch-held-c1',
        async () => {
          starts.push(Date.now());
          await sleep(5);
          ends.push(Date.now());
        },
        { connection: connect(), prefix, concurrency: 1, fetchHoldMs: 3_000 },
      );
      try {
        await worker.waitUntilReady();
        await sleep(200);
        await queue.add('job', { i: 0 });
        const deadline = Date.now() + 10_000;
        while (ends.length < 1 && Date.now() < deadline) await sleep(2);
        await sleep(20); // idle again, after the first job's completion found the queue empty
        await queue.add('job', { i: 1 });
        while (starts.length < 2 && Date.now() < deadline) await sleep(2);
        // Well before the 3 s hold would have run out.
        expect(starts[1] - ends[0]).toBeLessThan(1_500);
      } finally {
        await stop(queue, worker);
      }
    });

    it('a delayed job still starts when it is due, not at the next blocking timeout', async () => {
      let started = 0;
      const { queue, worker } = await idleWorker('prefetch-delayed', async () => void (started = Date.now()));
      try {
        const added = Date.now();
        await queue.add('job', {}, { delay: 300 });
        const deadline = Date.now() + 10_000;
        while (!started && Date.now() < deadline) await sleep(10);
        expect(started - added).toBeGreaterThanOrEqual(290);
        // BullMQ's blocking timeout (drainDelay) is 5 s: well before it.
        expect(started - added).toBeLessThan(3_000);
      } finally {
        await stop(queue, worker);
      }
    });
  });
});
