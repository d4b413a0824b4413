import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { QueueName } from '@lib/contracts';
import { parseLimits, RateLimitsConfig } from '@lib/config';
import { Admission, LimitSubject, ProviderLimiter } from './provider-limiter';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Most calls that fit in any window of `windowMs`, given each call's time and cost. */
function busiestWindow(calls: Array<{ at: number; cost: number }>, windowMs: number): number {
  const sorted = [...calls].sort((a, b) => a.at - b.at);
  let best = 0;
  let sum = 0;
  let lo = 0;
  for (const call of sorted) {
    sum += call.cost;
    while (sorted[lo].at <= call.at - windowMs) sum -= sorted[lo++].cost;
    best = Math.max(best, sum);
  }
  return best;
}

describe('ProviderLimiter (real Redis)', () => {
  const connections: IORedis[] = [];
  let prefix: string;

  const limiter = (doc: unknown, leaseTtlMs = 60_000): ProviderLimiter => {
    const problems: string[] = [];
    const limits: RateLimitsConfig = { providers: parseLimits(doc, 'test', problems) };
    expect(problems).toEqual([]);
    const redis = new IORedis(REDIS_URL);
    connections.push(redis);
    return new ProviderLimiter(redis, prefix, limits, { leaseTtlMs, concurrencyRetryMs: 100 });
  };
  const subject = (over: Partial<LimitSubject> = {}): LimitSubject => ({
    queue: QueueName.OpenAI,
    model: 'gpt-4o',
    tokens: 0,
    leaseId: `job-${randomBytes(4).toString('hex')}`,
    prepaid: false,
    ...over,
  });
  /** When the call may go: now for an admission, now + wait for a reservation. */
  const slot = (a: Admission, now: number): number => (a.admitted ? now : now + a.waitMs);

  beforeEach(() => {
    prefix = `rl${randomBytes(4).toString('hex')}`;
  });
  afterAll(async () => {
    for (const c of connections) {
      const keys = await c.keys('rl*:rl:*');
      if (keys.length) await c.del(...keys);
      c.disconnect();
    }
  });

  it('three workers reserving at once never put more than the RPM cap in any minute', async () => {
    const workers = [0, 1, 2].map(() => limiter({ providers: { openai: { rpm: 120 } } }));
    const calls: Array<{ at: number; cost: number }> = [];
    await Promise.all(
      workers.map(async (w) => {
        for (let i = 0; i < 100; i++) {
          const now = Date.now();
          const a = await w.acquire(subject());
          calls.push({ at: slot(a, now), cost: 1 });
          if (!a.admitted) expect(a).toMatchObject({ reason: 'rate', reserved: true });
        }
      }),
    );
    expect(calls).toHaveLength(300);
    // 300 calls at 120/min (less 3% headroom) reach ~2.5 minutes ahead, each minute full but not over.
    expect(busiestWindow(calls, 60_000)).toBeLessThanOrEqual(120);
    expect(busiestWindow(calls, 60_000)).toBeGreaterThanOrEqual(114);
    const last = Math.max(...calls.map((c) => c.at)) - Date.now();
    expect(last).toBeGreaterThan(140_000);
  });

  it('late jobs bunching up with their slots are still held to the cap by what was really sent', async () => {
    // Jobs that slept past their slots all come back at once (prepaid): the send log stops them.
    const w = limiter({ jitter_ms: 1000, providers: { openai: { rpm: 5, tpm: 1_000 } } });
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await w.acquire(subject({ prepaid: true, tokens: 300 })));
    expect(sent.map((a) => a.admitted)).toEqual([true, true, true]);
    const overTokens = await w.acquire(subject({ prepaid: true, tokens: 300 }));
    expect(overTokens).toMatchObject({ admitted: false, reason: 'window', reserved: false });
    // Until the first send leaves the 61 s window.
    if (!overTokens.admitted) expect(overTokens.waitMs).toBeGreaterThan(60_000);
    expect((await w.acquire(subject({ prepaid: true, tokens: 100 }))).admitted).toBe(true);
    const overRequests = await w.acquire(subject({ prepaid: true, tokens: 0 }));
    expect((await w.acquire(subject({ prepaid: true, tokens: 0 }))).admitted).toBe(false);
    expect(overRequests.admitted).toBe(true);
  });

  it('a request bigger than the whole burst is charged its cost once, not its cost plus the wait', async () => {
    // 60,000 TPM, 3 % headroom: e ~1.03 ms a token, a burst of 1,800 tokens. Requests of 6,000
    // tokens each get slots 6,000 e (~6.2 s) apart.
    const w = limiter({ jitter_ms: 0, providers: { openai: { tpm: 60_000 } } });
    const now = Date.now();
    const slots = [];
    for (let i = 0; i < 3; i++) slots.push(slot(await w.acquire(subject({ tokens: 6_000 })), now) - now);
    expect(slots[0]).toBeLessThan(50);
    expect(slots[1]).toBeGreaterThan(6_000);
    expect(slots[1]).toBeLessThan(6_500);
    expect(slots[2] - slots[1]).toBeGreaterThan(6_000);
    expect(slots[2] - slots[1]).toBeLessThan(6_500);
  });

  it('holds tokens per minute for the provider and the model together', async () => {
    const w = limiter({ providers: { openai: { tpm: 10_000, models: { 'gpt-4o': { tpm: 5_000 } } } } });
    const calls: Array<{ at: number; cost: number; model: string }> = [];
    for (let i = 0; i < 60; i++) {
      const model = i % 2 ? 'gpt-4o' : 'gpt-4o-mini';
      const cost = 200 + (i % 5) * 150;
      const now = Date.now();
      calls.push({ at: slot(await w.acquire(subject({ model, tokens: cost })), now), cost, model });
    }
    expect(busiestWindow(calls, 60_000)).toBeLessThanOrEqual(10_000);
    expect(busiestWindow(calls.filter((c) => c.model === 'gpt-4o'), 60_000)).toBeLessThanOrEqual(5_000);
  });

  it('a job coming back with its reserved slot is admitted without paying twice', async () => {
    // 60 RPM with 1% headroom: e = 1010 ms a request, a burst tolerance of 0.6 e.
    const w = limiter({ jitter_ms: 0, providers: { openai: { rpm: 60, headroom: 0.01 } } });
    const first = await w.acquire(subject());
    expect(first.admitted).toBe(true);
    const s = subject();
    const second = await w.acquire(s);
    expect(second).toMatchObject({ admitted: false, reason: 'rate', reserved: true });
    const back = await w.acquire({ ...s, prepaid: true });
    expect(back.admitted).toBe(true);
    // A request (1 unit) is bigger than the 0.6-unit burst: slots are e apart. The newcomer's
    // is 2 e away (3 e had the returning job paid again).
    const now = Date.now();
    const third = await w.acquire(subject());
    expect(third.admitted).toBe(false);
    expect(slot(third, now) - now).toBeGreaterThan(1_700);
    expect(slot(third, now) - now).toBeLessThan(2_600);
  });

  it('a now-only call is admitted while there is room and refused without a reserved slot when not', async () => {
    const w = limiter({ jitter_ms: 0, providers: { openai: { rpm: 60, headroom: 0.01 } } });
    expect((await w.acquire(subject({ nowOnly: true }))).admitted).toBe(true);
    const refused = await w.acquire(subject({ nowOnly: true }));
    expect(refused).toMatchObject({ admitted: false, reason: 'rate', reserved: false });
    // The refusal charged nothing: the next job's slot is one emission away (1010 ms), not two.
    const now = Date.now();
    const next = await w.acquire(subject());
    expect(next).toMatchObject({ admitted: false, reserved: true });
    expect(slot(next, now) - now).toBeGreaterThan(700);
    expect(slot(next, now) - now).toBeLessThan(1_600);
  });

  it('caps calls in flight across workers and frees a slot on settle', async () => {
    const [a, b] = [limiter({ providers: { openai: { concurrency: 2 } } }), limiter({ providers: { openai: { concurrency: 2 } } })];
    const one = await a.acquire(subject());
    const two = await b.acquire(subject());
    expect(one.admitted && two.admitted).toBe(true);
    const three = await a.acquire(subject());
    expect(three).toMatchObject({ admitted: false, reason: 'concurrency', reserved: false });
    if (one.admitted) await a.settle(one.ticket, undefined);
    expect((await b.acquire(subject())).admitted).toBe(true);
  });

  it('a lease of a crashed worker expires', async () => {
    const w = limiter({ providers: { openai: { concurrency: 1 } } }, 300);
    expect((await w.acquire(subject())).admitted).toBe(true);
    expect((await w.acquire(subject())).admitted).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    expect((await w.acquire(subject())).admitted).toBe(true);
  });

  it("a 429 pause holds the model for every worker, even jobs with a reserved slot, but not other models", async () => {
    const [a, b] = [limiter({ providers: { openai: { rpm: 6000 } } }), limiter({ providers: { openai: { rpm: 6000 } } })];
    await a.pause(QueueName.OpenAI, 'gpt-4o', 2_000);
    const held = await b.acquire(subject({ prepaid: true }));
    expect(held).toMatchObject({ admitted: false, reason: 'paused', reserved: false });
    if (!held.admitted) expect(held.waitMs).toBeGreaterThan(1_500);
    expect((await b.acquire(subject({ model: 'gpt-4o-mini' }))).admitted).toBe(true);
    // A shorter pause never shortens a longer one.
    await a.pause(QueueName.OpenAI, 'gpt-4o', 10);
    const still = await b.acquire(subject());
    expect(still.admitted).toBe(false);
  });

  it('charges tokens the estimate missed, and refunds unused ones only where the provider does', async () => {
    const charge = async (refund: boolean, reported: number): Promise<number> => {
      prefix = `rl${randomBytes(4).toString('hex')}`;
      const w = limiter({ jitter_ms: 0, providers: { openai: { tpm: 60_000, refund_unused_tokens: refund } } });
      const first = await w.acquire(subject({ tokens: 1_000 }));
      expect(first.admitted).toBe(true);
      if (first.admitted) await w.settle(first.ticket, reported);
      const now = Date.now();
      const next = await w.acquire(subject({ tokens: 1_000 }));
      return slot(next, now) - now;
    };
    // 60k TPM: ~1.03 ms a token, 1,800 tokens of burst.
    expect(await charge(false, 5_000)).toBeGreaterThan(3_500);
    expect(await charge(false, 10)).toBeLessThan(300);
    expect(await charge(true, 10)).toBe(0);
    expect(await charge(false, 1_000)).toBeLessThan(300);
  });

  it('an admission whose call never went out gives its lease and its tokens back, even where unused tokens are not refunded', async () => {
    const next = async (release: boolean): Promise<number> => {
      prefix = `rl${randomBytes(4).toString('hex')}`;
      const w = limiter({ jitter_ms: 0, providers: { openai: { tpm: 60_000, concurrency: 1, refund_unused_tokens: false } } });
      const first = await w.acquire(subject({ tokens: 1_000 }));
      expect(first.admitted).toBe(true);
      if (first.admitted) await (release ? w.release(first.ticket) : w.settle(first.ticket, undefined));
      const now = Date.now();
      return slot(await w.acquire(subject({ tokens: 1_000 })), now) - now;
    };
    // 60k TPM: 1,800 tokens of burst. Released: the second 1,000 go at once (and the one call slot is free).
    expect(await next(true)).toBe(0);
    // Control: settled without a report, the first 1,000 stay charged and the second waits.
    expect(await next(false)).toBeGreaterThan(100);
  });

  it('costs nothing for a queue without caps but still honours pauses', async () => {
    const w = limiter({ providers: {} });
    expect((await w.acquire(subject())).admitted).toBe(true);
    await w.pause(QueueName.OpenAI, 'gpt-4o', 1_000);
    expect((await w.acquire(subject())).admitted).toBe(false);
  });

  describe('admitOnFetch (the admission of a job in the round trip that fetched it)', () => {
    const LIMITS = {
      providers: {
        openai: {
          rpm: 1_000,
          tpm: 100_000,
          concurrency: 50,
          default_max_tokens: 300,
          models: { 'gpt-4o*': { rpm: 50, tpm: 20_000 }, 'gpt-4o-mini': { rpm: 40, concurrency: 2 }, 'gpt-4*': { tpm: 9_000 } },
        },
      },
    };
    let jobSeq = 0;

    /** A job as a fetch leaves it: at the head of the active list, locked with `token`. */
    const fetchedJob = async (redis: IORedis, data: string, token: string) => {
      const jobPrefix = `${prefix}:q:`;
      const jobId = `openai-${++jobSeq}`;
      await redis.hset(`${jobPrefix}${jobId}`, 'data', data);
      await redis.set(`${jobPrefix}${jobId}:lock`, token);
      await redis.lpush(`${jobPrefix}active`, jobId);
      return { jobId, keys: { active: `${jobPrefix}active`, jobPrefix } };
    };

    /** The limiter's keys under `of`, each with what identifies its content (times left out). */
    const limiterState = async (redis: IORedis, of: string): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for (const key of (await redis.keys(`${of}:rl:*`)).sort()) {
        const name = key.slice(of.length);
        const type = await redis.type(key);
        if (type === 'zset') out[name] = (await redis.zrange(key, 0, -1)).map((m) => m.replace(/:\d+:(\d+)$/, ':<now>:$1')).join(',');
        else if (name.endsWith(':tat')) out[name] = `tat ~${Math.round((Number(await redis.get(key)) - Date.now()) / 1_000)} s ahead`;
        else out[name] = String(await redis.get(key));
      }
      return out;
    };

    it('charges the keys acquire charges, for exact, prefix and unmatched model names', async () => {
      const redis = new IORedis(REDIS_URL);
      connections.push(redis);
      const cases: Array<[model: string, tokens: number, addDefault: 0 | 1]> = [
        ['gpt-4o-mini', 120, 1], // exact name over the longer prefix
        ['gpt-4o-2024-08-06', 500, 0], // longest prefix: gpt-4o*
        ['gpt-4.1', 80, 1], // gpt-4*
        ['o3', 0, 0], // no model caps; no tokens, so no TPM charge
      ];
      for (const [model, tokens, addDefault] of cases) {
        const viaFetch = `rl${randomBytes(4).toString('hex')}`;
        const viaAcquire = `rl${randomBytes(4).toString('hex')}`;
        prefix = viaFetch;
        const fetchLimiter = limiter(LIMITS);
        const token = `w1:p${jobSeq}`;
        const { jobId, keys } = await fetchedJob(redis, JSON.stringify({ admit: [model, tokens, addDefault], request: { model } }), token);
        const fetched = await fetchLimiter.admitOnFetch(redis, QueueName.OpenAI, keys, token, { embeddings: false });
        prefix = viaAcquire;
        const acquired = await limiter(LIMITS).acquire(subject({ model, tokens: tokens + addDefault * 300, leaseId: jobId }));

        expect(fetched?.jobId).toBe(jobId);
        const named = (value: unknown, of: string) => JSON.parse(JSON.stringify(value).split(of).join('<prefix>'));
        expect(named(fetched?.admission, viaFetch)).toEqual(named(acquired, viaAcquire));
        const state = await limiterState(redis, viaFetch);
        expect(state).toEqual(await limiterState(redis, viaAcquire));
        expect(Object.keys(state).length).toBeGreaterThan(model === 'o3' ? 3 : 6);
        await redis.del(`${viaFetch}:q:${jobId}`, `${viaFetch}:q:${jobId}:lock`, `${viaFetch}:q:active`);
      }
    });

    it('answers no job for a fetch that locked none, and no admission for a job without a subject', async () => {
      const redis = new IORedis(REDIS_URL);
      connections.push(redis);
      const w = limiter(LIMITS);
      const plain = await fetchedJob(redis, JSON.stringify({ request: { model: 'gpt-4o' }, admit: ['gpt-4o', 10, 0] }), 'w1:p1');
      // The head of the active list is locked by another fetch: not this fetch's job.
      expect(await w.admitOnFetch(redis, QueueName.OpenAI, plain.keys, 'w1:p2', { embeddings: false })).toBeUndefined();
      // The subject is read only from the head of the data.
      expect(await w.admitOnFetch(redis, QueueName.OpenAI, plain.keys, 'w1:p1', { embeddings: false })).toEqual({ jobId: plain.jobId });
      const broken = await fetchedJob(redis, '{"admit":["gpt-4o]", 10, 0], "request": {}}', 'w1:p3');
      expect(await w.admitOnFetch(redis, QueueName.OpenAI, broken.keys, 'w1:p3', { embeddings: false })).toEqual({ jobId: broken.jobId });
      expect(await redis.keys(`${prefix}:rl:*`)).toEqual([]);
    });

    it('admits a text embedding only when the worker says it charges what the subject says', async () => {
      const redis = new IORedis(REDIS_URL);
      connections.push(redis);
      const w = limiter(LIMITS);
      const job = await fetchedJob(redis, JSON.stringify({ admit: ['text-embedding-3-small', 5, 0, 1], request: {} }), 'w2:p1');
      expect(await w.admitOnFetch(redis, QueueName.OpenAI, job.keys, 'w2:p1', { embeddings: false })).toEqual({ jobId: job.jobId });
      expect(await redis.keys(`${prefix}:rl:*`)).toEqual([]);
      const admitted = await w.admitOnFetch(redis, QueueName.OpenAI, job.keys, 'w2:p1', { embeddings: true });
      expect(admitted).toMatchObject({ jobId: job.jobId, tokens: 5, admission: { admitted: true } });
      expect(await redis.get(`${prefix}:rl:{openai}:tpm:sum`)).toBe('5');
    });

    it('refuses as acquire refuses: a full call slot, a reserved slot, a pause', async () => {
      const redis = new IORedis(REDIS_URL);
      connections.push(redis);
      const w = limiter({ jitter_ms: 0, providers: { openai: { rpm: 60, headroom: 0.05, models: { 'gpt-4o-mini': { concurrency: 1 } } } } });
      const admitted = async (model: string, token: string) => {
        const { keys } = await fetchedJob(redis, JSON.stringify({ admit: [model, 0, 0] }), token);
        return (await w.admitOnFetch(redis, QueueName.OpenAI, keys, token, { embeddings: false }))!.admission!;
      };
      const first = await admitted('gpt-4o-mini', 'a');
      expect(first.admitted).toBe(true);
      expect(await admitted('gpt-4o-mini', 'b')).toMatchObject({ admitted: false, reason: 'concurrency', reserved: false });
      if (first.admitted) await w.settle(first.ticket, undefined);
      expect((await admitted('gpt-4o-mini', 'c')).admitted).toBe(true);
      // 60 RPM with 5 % headroom: a burst of 3, then one a second, reserved ahead.
      expect((await admitted('gpt-4o', 'd')).admitted).toBe(true);
      expect(await admitted('gpt-4o', 'e')).toMatchObject({ admitted: false, reason: 'rate', reserved: true });
      await w.pause(QueueName.OpenAI, 'o1', 5_000);
      expect(await admitted('o1', 'f')).toMatchObject({ admitted: false, reason: 'paused', reserved: false });
    });
  });
});
