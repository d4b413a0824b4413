import { randomBytes } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import IORedis from 'ioredis';
import { completedNotice, FinishNotices, INLINE_NOTICE_MAX_CHARS } from './finish-notices';
import { StartFirstWorker } from './start-first-worker';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Heard {
  message: string;
  /** The job's state when the notice arrived. */
  state: string;
}

/** Real BullMQ on the real Redis; the notices are heard by a real subscriber. */
describe('FinishNotices', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const channel = `${prefix}:notify:test`;
  const connections: IORedis[] = [];
  const connect = () => {
    const c = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  let queue: Queue;
  let worker: StartFirstWorker;
  const notices = new FinishNotices();
  /** What the processor does, per job name. */
  const behaviours: Record<string, (job: Job) => Promise<unknown>> = {};
  const heard: Heard[] = [];
  const taken = new Map<string, Promise<boolean>>();

  beforeAll(async () => {
    queue = new Queue('finish', { connection: connect(), prefix });
    const subscriber = connect();
    subscriber.on('message', (_channel: string, message: string) => {
      const id = (JSON.parse(message) as { id: string }).id;
      // The state is read at once: the notice must never run ahead of the stored result.
      void queue.getJobState(id).then((state) => heard.push({ message, state }));
    });
    await subscriber.subscribe(channel);
    worker = new StartFirstWorker(
      'finish',
      async (job: Job) => {
        if (job.data.notify) notices.expect(job.id!, channel);
        try {
          return await behaviours[job.name](job);
        } catch (err) {
          notices.forget(job.id!);
          throw err;
        }
      },
      { connection: connect(), prefix, concurrency: 4 },
    );
    notices.attach(worker);
    worker.on('completed', (job) => taken.set(job.id!, notices.take(job.id!)));
    worker.on('failed', (job) => {
      if (job) taken.set(job.id!, notices.take(job.id!));
    });
  });

  afterAll(async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    for (const c of connections) c.disconnect();
  });

  async function settle(jobId: string): Promise<boolean> {
    const deadline = Date.now() + 10_000;
    while (!taken.has(jobId) && Date.now() < deadline) await sleep(10);
    expect(taken.has(jobId)).toBe(true);
    const published = await taken.get(jobId)!;
    await sleep(100); // a stray notice would arrive within this
    return published;
  }

  const noticesOf = (jobId: string) => heard.filter((h) => (JSON.parse(h.message) as { id: string }).id === jobId);

  it("publishes a sync job's notice from Redis, with the stored result, once the job is completed", async () => {
    const result = { data: { text: 'héllo "quoted"' }, tokens_used: { total: 3 }, cached: false };
    behaviours.small = async () => result;
    const job = await queue.add('small', { notify: true });
    expect(await settle(job.id!)).toBe(true);
    const mine = noticesOf(job.id!);
    expect(mine).toHaveLength(1);
    expect(mine[0].state).toBe('completed');
    expect(JSON.parse(mine[0].message)).toEqual({ id: job.id, state: 'completed', result });
    // Byte for byte what BullMQ stored.
    const stored = await connections[0].hget(`${prefix}:finish:${job.id}`, 'returnvalue');
    expect(mine[0].message).toBe(`{"id":${JSON.stringify(job.id)},"state":"completed","result":${stored}}`);
    // The worker's own notice (its fallback) is the same text.
    expect(completedNotice(job.id!, JSON.stringify(result))).toBe(mine[0].message);
  });

  it('sends only the head of a result over the inline limit', async () => {
    behaviours.large = async () => ({ data: { text: 'x'.repeat(INLINE_NOTICE_MAX_CHARS + 10) } });
    const job = await queue.add('large', { notify: true });
    expect(await settle(job.id!)).toBe(true);
    const mine = noticesOf(job.id!);
    expect(mine).toHaveLength(1);
    expect(JSON.parse(mine[0].message)).toEqual({ id: job.id, state: 'completed' });
    expect(mine[0].state).toBe('completed');
    const stored = await connections[0].hget(`${prefix}:finish:${job.id}`, 'returnvalue');
    expect(completedNotice(job.id!, stored!)).toBe(mine[0].message);
  });

  it('publishes nothing for a job nobody waits for', async () => {
    behaviours.async = async () => ({ data: 1 });
    const job = await queue.add('async', { notify: false });
    expect(await settle(job.id!)).toBe(false);
    expect(noticesOf(job.id!)).toHaveLength(0);
  });

  it('publishes nothing for a failed job (the worker sends that notice itself)', async () => {
    behaviours.fails = async () => {
      throw new Error('provider said no');
    };
    const job = await queue.add('fails', { notify: true });
    expect(await settle(job.id!)).toBe(false);
    expect(noticesOf(job.id!)).toHaveLength(0);
  });

  it('publishes nothing when the completion did not take (the lock was lost), and keeps nothing for it', async () => {
    const errors: string[] = [];
    worker.on('error', (err) => errors.push(err.message));
    behaviours.lost = async (job) => {
      // Another worker took the job over (stalled-job recovery): this attempt's lock is gone.
      await connections[0].del(`${prefix}:finish:${job.id}:lock`);
      return { data: 'late' };
    };
    const job = await queue.add('lost', { notify: true }, { attempts: 1 });
    const deadline = Date.now() + 10_000;
    while (!errors.some((m) => m.includes(job.id!)) && Date.now() < deadline) await sleep(10);
    expect(errors.some((m) => /lock/i.test(m) && m.includes(job.id!))).toBe(true);
    await sleep(200);
    expect(noticesOf(job.id!)).toHaveLength(0);
    expect(await queue.getJobState(job.id!)).toBe('active');
    expect(await notices.take(job.id!)).toBe(false);
  });
});
