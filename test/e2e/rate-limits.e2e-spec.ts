import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import IORedis from 'ioredis';
import { GatewayMetrics } from '@lib/metrics';
import { LuaScript } from '@lib/queue';
import { FETCH_ADMIT_LUA, RESERVE_LUA } from '@lib/ratelimit';
import { eventually, REDIS_URL, useOpenAIGateway } from '../support/gateway-harness';
import { limitsFile } from '../support/limits-file';

const chat = (model: string, prompt = 'hi') => ({ provider: 'openai', model, inputs: { prompts: [prompt] }, parameters: { max_tokens: 10 } });

describe('provider rate limits shared by every worker', () => {
  // 60 RPM for one model, 1% headroom: a slot every ~1010 ms after a burst of 0.6 of one.
  // The fake itself allows 60 requests in any 60 s, and answers 429 past that.
  const t = useOpenAIGateway(
    { RATE_LIMITS_FILE: limitsFile('providers:\n  openai:\n    headroom: 0.01\n    models:\n      gpt-4o-mini: { rpm: 60 }\n'), WORKER_CONCURRENCY: '1' },
    { fake: { rpm: 60 } },
  );

  it('two workers keep to the limit together; waiting jobs hold no worker slot and are charged no attempt', async () => {
    await t.gw.startWorker();
    const limited = await Promise.all([1, 2, 3, 4].map((i) => t.gw.infer(chat('gpt-4o-mini', `n${i}`), { prefer: 'respond-async' })));
    // Both workers (one slot each) are free for other models while the limited jobs sleep.
    const other = await t.gw.infer(chat('gpt-4o', 'unlimited'));
    expect(other.status).toBe(200);
    expect(other.body.data.text).toBe('echo: unlimited');

    const views = await Promise.all(limited.map((r) => t.gw.pollJob(r.body.job_id, (v) => v.status === 'COMPLETED', 20_000)));
    for (const view of views) expect(view.attempts).toBe(1);
    expect(t.fake.rateLimit.refused).toBe(0);
    const at = t.fake.requests.filter((r) => (r.body as { model?: string }).model === 'gpt-4o-mini').map((r) => r.at);
    expect(at).toHaveLength(4);
    // The first call goes at once; the other three each get their own slot, ~1010 ms apart.
    expect(at[3] - at[0]).toBeGreaterThanOrEqual(2_300);
  });
});

describe('admission in the round trip that fetches the job', () => {
  const t = useOpenAIGateway({ RATE_LIMITS_FILE: limitsFile('providers:\n  openai:\n    rpm: 100000\n    tpm: 100000000\n    concurrency: 100\n') });

  it('chat and single-text embedding jobs reach their provider without a limiter call of their own; a list of texts makes one', async () => {
    const fetchAdmit = new LuaScript(FETCH_ADMIT_LUA).sha;
    const reserve = new LuaScript(RESERVE_LUA).sha;
    // redis-cli's MONITOR: every command Redis runs, one line each ("evalsha" "<sha>" "<n>" keys... args...).
    const monitor = spawn('redis-cli', ['-u', REDIS_URL, 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const scripts: Array<{ sha: string; chargesHere: boolean }> = [];
    let started: () => void;
    const monitoring = new Promise<void>((resolve) => (started = resolve));
    readline.createInterface({ input: monitor.stdout }).on('line', (line) => {
      if (line === 'OK') started(); // MONITOR is on
      const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
      if (args[0]?.toLowerCase() === 'evalsha') scripts.push({ sha: args[1], chargesHere: args.some((a) => a.startsWith(`${t.gw.prefix}:rl:`)) });
    });
    try {
      await monitoring;
      await new Promise((r) => setTimeout(r, 300)); // the worker is idle: its fetch waits in BZPOPMIN
      const res = await t.gw.infer(chat('gpt-4o-mini', 'admitted on fetch'));
      expect(res.status).toBe(200);
      const log = await eventually(async () => {
        const redis = new IORedis(REDIS_URL);
        try {
          const members = await redis.zrange(`${t.gw.prefix}:rl:{openai}:rpm:log`, 0, -1);
          return members.length > 0 ? members : undefined;
        } finally {
          redis.disconnect();
        }
      });
      // Charged once (one request in the send log), by the script behind the fetch.
      expect(log).toHaveLength(1);
      expect(scripts.filter((s) => s.sha === fetchAdmit).length).toBeGreaterThanOrEqual(1);
      expect(scripts.filter((s) => s.sha === reserve && s.chargesHere)).toEqual([]);

      const single = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-small', inputs: { text: 'admitted on fetch too' } });
      expect(single.status).toBe(200);
      expect(scripts.filter((s) => s.sha === reserve && s.chargesHere)).toEqual([]);
      const list = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-small', inputs: { texts: ['charged', 'at the gate'] } });
      expect(list.status).toBe(200);
      await eventually(() => scripts.some((s) => s.sha === reserve && s.chargesHere) || undefined);
    } finally {
      monitor.kill();
    }
  });
});

describe("a provider's 429 pauses the model for every worker", () => {
  const t = useOpenAIGateway({ RATE_LIMITS_FILE: 'none', JOB_ATTEMPTS: '2' });

  it('the job sits the pause out uncharged, and a job sent during the pause waits for its end', async () => {
    await t.gw.startWorker();
    t.fake.failNext({ status: 429, headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1500ms' } }, 1);
    const first = t.gw.infer(chat('gpt-4o-mini', 'first'));
    await t.fake.waitForRequests(1);
    const refusedAt = Date.now();
    const second = await t.gw.infer(chat('gpt-4o-mini', 'second'), { prefer: 'respond-async' });
    const res = await first;
    expect(res.status).toBe(200);
    expect(res.body.data.text).toBe('echo: first');
    const view = await t.gw.pollJob(second.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.attempts).toBe(1);
    // Nobody called the model again before the reset the provider gave.
    expect(t.fake.count('/chat/completions')).toBe(3);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(1_400);
    // The workers' metrics saw the pause and the 429.
    const texts = await Promise.all(t.gw.workers.map((w) => w.get(GatewayMetrics).metrics()));
    const sum = (re: RegExp) => texts.reduce((n, text) => n + Number(re.exec(text)?.[1] ?? 0), 0);
    expect(sum(/^gateway_rate_limit_pauses_total\{provider="openai",model="gpt-4o-mini"\} (\d+)/m)).toBe(1);
    expect(sum(/^gateway_upstream_errors_total\{provider="openai",status="429"\} (\d+)/m)).toBe(1);
    expect(sum(/^gateway_rate_limit_wait_seconds_count\{provider="openai",model="gpt-4o-mini",reason="paused"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
  });

  it('a 429 without hints still pauses, and other models go on', async () => {
    t.fake.failNext({ status: 429 }, 1, '/chat/completions');
    const paused = t.gw.infer(chat('gpt-4o-mini', 'paused'), { prefer: 'wait=30' });
    await t.fake.waitForRequests(1);
    const other = await t.gw.infer(chat('gpt-4o', 'other'));
    expect(other.status).toBe(200);
    expect((await paused).status).toBe(200);
  });
});

describe('429s past RATE_LIMIT_MAX_REQUEUES', () => {
  const t = useOpenAIGateway({ RATE_LIMITS_FILE: 'none', RATE_LIMIT_MAX_REQUEUES: '1', JOB_ATTEMPTS: '2' });

  it('count as failed attempts; the last error is the provider\'s 429', async () => {
    t.fake.failNext({ status: 429, headers: { 'retry-after-ms': '10' }, body: { error: { message: 'slow down please', type: 'requests', param: null, code: 'rate_limit_exceeded' } } }, 5);
    const res = await t.gw.infer(chat('gpt-4o-mini'));
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ type: 'InferenceServiceUnavailableError', code: 'provider_rate_limited' });
    expect(res.body.error.message).toContain('slow down please');
    expect(res.body.error.message).toContain('gave up after 2 attempts');
    // One uncharged sit-out, then two charged attempts.
    expect(t.fake.count('/chat/completions')).toBe(3);
  });
});

describe('per-call timeout: a hanging provider', () => {
  const t = useOpenAIGateway({ PROVIDER_TIMEOUT_MS: '400', JOB_ATTEMPTS: '3' });

  it('the call times out and the job retries with backoff', async () => {
    t.fake.hang('/chat/completions');
    const pending = t.gw.infer(chat('gpt-4o-mini', 'slow'), { prefer: 'respond-async' });
    const { body } = await pending;
    await t.fake.waitForRequests(2, '/chat/completions', 10_000);
    t.fake.release();
    const view = await t.gw.pollJob(body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.attempts).toBeGreaterThanOrEqual(2);
    expect(view.result.data.text).toBe('echo: slow');
  });

  it('when every attempt hangs, the client gets 504 provider_timeout', async () => {
    t.fake.hang('/chat/completions');
    const res = await t.gw.infer(chat('gpt-4o-mini', 'never'));
    expect(res.status).toBe(504);
    expect(res.body.error).toMatchObject({ type: 'TimeoutError', code: 'provider_timeout' });
    expect(res.body.error.message).toContain('gave up after 3 attempts');
    expect(t.fake.count('/chat/completions')).toBe(3);
  });
});

describe('per-API-key request rate', () => {
  const t = useOpenAIGateway({ API_KEYS: 'key-one,key-two', API_RATE_LIMIT_RPM: '3' });
  const auth = (key: string) => ({ authorization: `Bearer ${key}`, prefer: 'respond-async' });

  it('counts down in X-RateLimit headers, then answers 429 with Retry-After; other keys keep their own budget', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.gw.infer(chat('gpt-4o-mini'), auth('key-one'));
      expect(res.status).toBe(202);
      expect(res.headers.get('x-ratelimit-limit')).toBe('3');
      remaining.push(res.headers.get('x-ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await t.gw.infer(chat('gpt-4o-mini'), auth('key-one'));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ success: false, status: 429, error: { type: 'TooManyRequestsError', code: 'rate_limit_exceeded' } });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    expect(JSON.stringify(refused.body)).not.toContain('key-one');

    const other = await t.gw.infer(chat('gpt-4o-mini'), auth('key-two'));
    expect(other.status).toBe(202);
    expect(other.headers.get('x-ratelimit-remaining')).toBe('2');
  });

  it('idempotency keys are per API key', async () => {
    const headers = (key: string) => ({ ...auth(key), 'idempotency-key': 'shared-name' });
    const [one, two] = [await t.gw.infer(chat('gpt-4o', 'a'), headers('key-two')), await t.gw.infer(chat('gpt-4o', 'a'), { ...headers('key-one') })];
    expect(one.status).toBe(202);
    // key-one spent its budget above; key-two's second request is within its own.
    expect([202, 429]).toContain(two.status);
    if (two.status === 202) expect(two.body.job_id).not.toBe(one.body.job_id);
  });
});

describe('bounded backlog', () => {
  const t = useOpenAIGateway({ QUEUE_MAX_BACKLOG: '2' }, { worker: false });

  it('past QUEUE_MAX_BACKLOG waiting jobs the API answers 503 with Retry-After, and takes jobs again once there is room', async () => {
    const a = await t.gw.infer(chat('gpt-4o-mini'), { prefer: 'respond-async' });
    const b = await t.gw.infer(chat('gpt-4o-mini'), { prefer: 'respond-async' });
    expect([a.status, b.status]).toEqual([202, 202]);
    const full = await t.gw.infer(chat('gpt-4o-mini'), { prefer: 'respond-async' });
    expect(full.status).toBe(503);
    expect(full.body.error).toMatchObject({ type: 'InferenceServiceUnavailableError', code: 'queue_backlog_full', details: { queue: 'openai', max_backlog: 2 } });
    expect(full.headers.get('retry-after')).toBe('5');

    await t.gw.request('DELETE', `/v1/inference/jobs/${a.body.job_id}`);
    const again = await eventually(async () => {
      const res = await t.gw.infer(chat('gpt-4o-mini'), { prefer: 'respond-async' });
      return res.status === 202 ? res : undefined;
    });
    expect(again!.status).toBe(202);
  });
});

describe('Idempotency-Key', () => {
  const t = useOpenAIGateway();
  const body = chat('gpt-4o-mini', 'once');

  it('the same key and body twice: one provider call, the same result, the replay marked', async () => {
    const first = await t.gw.infer(body, { 'idempotency-key': 'order-1' });
    const second = await t.gw.infer(body, { 'idempotency-key': 'order-1' });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.data).toEqual(first.body.data);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('racing requests with one key make one job and one call', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => t.gw.infer(body, { 'idempotency-key': 'race-1', prefer: 'wait=20' })));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.data.text).toBe('echo: once');
    }
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('async then sync with one key: the same job id, then its result', async () => {
    const accepted = await t.gw.infer(body, { 'idempotency-key': 'order-2', prefer: 'respond-async' });
    const again = await t.gw.infer(body, { 'idempotency-key': 'order-2', prefer: 'respond-async' });
    expect(again.status).toBe(202);
    expect(again.body.job_id).toBe(accepted.body.job_id);
    await t.gw.pollJob(accepted.body.job_id, (v) => v.status === 'COMPLETED');
    const done = await t.gw.infer(body, { 'idempotency-key': 'order-2' });
    expect(done.status).toBe(200);
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('a failed job is replayed as the same failure, not run again', async () => {
    t.fake.failNext({ status: 400 }, 1);
    const first = await t.gw.infer(body, { 'idempotency-key': 'order-3' });
    const second = await t.gw.infer(body, { 'idempotency-key': 'order-3' });
    expect([first.status, second.status]).toEqual([400, 400]);
    expect(second.body.error.code).toBe('provider_rejected_input');
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('the same key with another body is a 422; a malformed key is a 422', async () => {
    await t.gw.infer(body, { 'idempotency-key': 'order-4', prefer: 'respond-async' });
    const reused = await t.gw.infer(chat('gpt-4o-mini', 'different'), { 'idempotency-key': 'order-4' });
    expect(reused.status).toBe(422);
    expect(reused.body.detail[0]).toMatchObject({ loc: ['header', 'idempotency-key'], type: 'idempotency_key_reused' });
    const bad = await t.gw.infer(body, { 'idempotency-key': 'x'.repeat(300) });
    expect(bad.status).toBe(422);
    expect(bad.body.detail[0].loc).toEqual(['header', 'idempotency-key']);
  });
});
