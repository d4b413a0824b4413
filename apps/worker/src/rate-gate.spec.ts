import { randomBytes } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import IORedis from 'ioredis';
import { InferenceJobData, Provider, QueueName, RawInferenceResponse, Task } from '@lib/contracts';
import { loadConfig, parseLimits } from '@lib/config';
import { GatewayMetrics } from '@lib/metrics';
import { ProviderLimiter } from '@lib/ratelimit';
import { RateGate } from './rate-gate';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Real limiter scripts on the real Redis; jobs are real BullMQ jobs. */
describe('RateGate admissions', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue<InferenceJobData>(QueueName.OpenAI, { connection: redis, prefix });
  const config = loadConfig({ REDIS_URL, QUEUE_PREFIX: prefix });
  const problems: string[] = [];
  // One request a minute: the first call is admitted, the second gets a slot a minute later.
  const limiter = new ProviderLimiter(redis, prefix, { providers: parseLimits({ providers: { openai: { rpm: 1 } } }, 'test', problems) }, { leaseTtlMs: 60_000 });
  const gate = new RateGate(config, limiter, new GatewayMetrics({ role: 'worker', defaultMetrics: false }));
  const heard: QueueName[] = [];
  gate.onAdmission((q) => heard.push(q));

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
