import { randomBytes } from 'node:crypto';
import { DelayedError, Job, Queue } from 'bullmq';
import IORedis from 'ioredis';
import { InferenceJobData, Provider, QueueName, RawInferenceResponse, Task } from '@lib/contracts';
import { loadConfig, parseLimits } from '@lib/config';
import { GatewayMetrics } from '@lib/metrics';
import { ProviderLimiter } from '@lib/ratelimit';
import { RateGate } from './rate-gate';
import { StartFirstWorker } from './start-first-worker';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Connections are opened in beforeAll, not while Jest collects the tests: a describe whose tests
// a `-t` filter skips runs no hooks, and a connection it had opened would keep Jest from exiting.

/** Real limiter scripts on the real Redis; jobs are real BullMQ jobs. */
describe('RateGate admissions', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ REDIS_URL, QUEUE_PREFIX: prefix });
  const problems: string[] = [];
  const heard: QueueName[] = [];
  let redis: IORedis;
  let queue: Queue<InferenceJobData>;
  let gate: RateGate;

  beforeAll(() => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = new Queue<InferenceJobData>(QueueName.OpenAI, { connection: redis, prefix });
    // One request a minute: the first call is admitted, the second gets a slot a minute later.
    const limiter = new ProviderLimiter(redis, prefix, { providers: parseLimits({ providers: { openai: { rpm: 1 } } }, 'test', problems) }, { leaseTtlMs: 60_000 });
    gate = new RateGate(config, limiter, new GatewayMetrics({ role: 'worker', defaultMetrics: false }));
    gate.onAdmission((q) => heard.push(q));
  });

  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const job = async (i: number) =>
    (await queue.add('inference', { request: { provider: Provider.OpenAI, model: 'gpt-4o-mini', task: Task.Chat, inputs: { prompts: [`p${i}`] }, parameters: {} }, receivedAt: Date.now() }, {
      jobId: `openai-gate-${prefix}-${i}`,
    })) as Job<InferenceJobData, RawInferenceResponse>;

  it('tells its listeners of an admission (the worker releases its held fetch then), and of nothing else', async () => {
    expect(problems).toEqual([]);
    await gate.enter(await job(1), undefined);
    expect(heard).toEqual([QueueName.OpenAI]);
    // Refused (its slot is a minute on): enter does not return a ticket, and nobody hears of it.
    await expect(gate.enter(await job(2), undefined)).rejects.toThrow();
    expect(heard).toEqual([QueueName.OpenAI]);
  });
});

/**
 * A StartFirstWorker wired as the worker host wires it: each fetch behind a wait carries the
 * fetched job's admission (RateGate.admitOnFetch), and a job's end drops one it did not use.
 */
describe('RateGate admission in the round trip that fetches the job', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ REDIS_URL, QUEUE_PREFIX: prefix });
  const connections: IORedis[] = [];
  let redis: IORedis;
  /** Each test's limiter keys are its own (`<prefix>-<name>:rl:...`). */
  const concKey = (name: string) => `${prefix}-${name}:rl:{openai}:conc`;

  beforeAll(() => {
    redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(redis);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    for (const c of connections) c.disconnect();
  });

  const data = (i: number, admit: boolean): InferenceJobData => ({
    ...(admit ? { admit: ['gpt-4o-mini', 12, 1] as InferenceJobData['admit'] } : {}),
    request: { provider: Provider.OpenAI, model: 'gpt-4o-mini', task: Task.Chat, inputs: { prompts: [`p${i}`] }, parameters: {} },
    receivedAt: Date.now(),
  });

  /** An idle worker on its own queue whose jobs run `body`, with a gate over `limits`. */
  async function setUp(name: string, limits: unknown, body: (gate: RateGate, job: Job<InferenceJobData, RawInferenceResponse>, token?: string) => Promise<unknown>) {
    const problems: string[] = [];
    const limiter = new ProviderLimiter(redis, `${prefix}-${name}`, { providers: parseLimits(limits, 'test', problems) }, { leaseTtlMs: 60_000 });
    expect(problems).toEqual([]);
    const gate = new RateGate(config, limiter, new GatewayMetrics({ role: 'worker', defaultMetrics: false }));
    const acquire = jest.spyOn(limiter, 'acquire');
    const queueName = `${QueueName.OpenAI}-${name}`;
    const queue = new Queue<InferenceJobData>(queueName, { connection: redis, prefix });
    const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(connection);
    const ended: string[] = [];
    const worker = new StartFirstWorker<InferenceJobData, RawInferenceResponse>(
      queueName,
      async (job, token) => {
        try {
          return (await body(gate, job, token)) as RawInferenceResponse;
        } finally {
          gate.dropFetchAdmission(token);
          ended.push(job.id!);
        }
      },
      { connection, prefix, concurrency: 4, onFetch: (client, token, keys) => gate.admitOnFetch(QueueName.OpenAI, client as unknown as IORedis, token, keys) },
    );
    await worker.waitUntilReady();
    await sleep(200); // idle: blocked in BZPOPMIN with its fetch queued behind
    /** Adds a job and waits until it has ended, then until the worker is idle again. */
    const run = async (i: number, admit: boolean) => {
      const job = await queue.add('inference', data(i, admit), { jobId: `openai-${name}-${i}` });
      const deadline = Date.now() + 5_000;
      while (!ended.includes(job.id!) && Date.now() < deadline) await sleep(5);
      await sleep(50);
      return job.id!;
    };
    const close = async () => {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    };
    return { gate, acquire, queue, run, close };
  }

  it('admits a job that carries a subject in its fetch, without asking the limiter again', async () => {
    const seen: Array<{ leases: number; acquires: number; prefetched: boolean }> = [];
    const t = await setUp('fetch', { providers: { openai: { rpm: 1_000, concurrency: 5 } } }, async (gate, job, token) => {
      const before = t.acquire.mock.calls.length;
      const ticket = await gate.enter(job, token);
      seen.push({ leases: await redis.zcard(concKey('fetch')), acquires: t.acquire.mock.calls.length - before, prefetched: /:p\d+$/.test(token!) });
      await gate.leave(ticket, undefined);
      return {};
    });
    try {
      await t.run(1, true);
      await t.run(2, false);
      await t.run(3, true);
      // With a subject: admitted by the fetch (the lease was taken there); without: the gate asks.
      expect(seen).toEqual([
        { leases: 1, acquires: 0, prefetched: true },
        { leases: 1, acquires: 1, prefetched: true },
        { leases: 1, acquires: 0, prefetched: true },
      ]);
      expect(await redis.zcard(concKey('fetch'))).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('a job that never reaches the gate gives back the call slot and the tokens its fetch took', async () => {
    const leases: number[] = [];
    /** How far ahead of now the provider's token schedule (GCRA TAT) runs, in ms (60k TPM: ~1 ms a token). */
    const tokensAhead = async () => Number((await redis.get(`${prefix}-unused:rl:{openai}:tpm:tat`)) ?? 0) - Date.now();
    const ahead: number[] = [];
    const t = await setUp('unused', { providers: { openai: { concurrency: 5, tpm: 60_000 } } }, async () => {
      leases.push(await redis.zcard(concKey('unused')));
      ahead.push(await tokensAhead());
      return {};
    });
    try {
      await t.run(1, true);
      expect(leases).toEqual([1]);
      // The fetch charged the prompt's 12 tokens and the default max_tokens (1,024).
      expect(ahead[0]).toBeGreaterThan(700);
      const deadline = Date.now() + 2_000;
      while (((await redis.zcard(concKey('unused'))) > 0 || (await tokensAhead()) > 100) && Date.now() < deadline) await sleep(10);
      expect(await redis.zcard(concKey('unused'))).toBe(0);
      expect(await tokensAhead()).toBeLessThanOrEqual(100);
    } finally {
      await t.close();
    }
  });

  it('a fetch that reserves a later slot puts the job to sleep in it, and the job then holds its slot at the gate', async () => {
    const outcomes: string[] = [];
    // One request a minute: the first is admitted, the second gets a slot a minute on.
    const t = await setUp('refused', { providers: { openai: { rpm: 1 } } }, async (gate, job, token) => {
      try {
        await gate.enter(job, token);
        outcomes.push('admitted');
      } catch (err) {
        outcomes.push(err instanceof DelayedError ? 'delayed' : String(err));
        throw err;
      }
      return {};
    });
    try {
      await t.run(1, true);
      const second = await t.run(2, true);
      expect(outcomes).toEqual(['admitted', 'delayed']);
      const job = (await t.queue.getJob(second))!;
      expect(await job.getState()).toBe('delayed');
      // Its slot is recorded, and the subject is gone: it comes back to the gate as prepaid.
      expect(job.data.limiter).toEqual({ prepaidAttempt: 0 });
      expect(job.data.admit).toBeUndefined();
      expect(t.acquire).not.toHaveBeenCalled();
    } finally {
      await t.close();
    }
  });
});
