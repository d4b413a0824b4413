import { freePort } from '../support/free-port';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApiApp } from '../../apps/api/src/api.factory';
import { createWorkerApp } from '../../apps/worker/src/worker.factory';
import { OpenAIFake } from '../fakes/openai-fake';
import { eventually, GatewayHarness } from '../support/gateway-harness';
import { parsePromText, sampleValue } from '../support/prom-text';

const API_KEY = 'ops-api-key-1';
const ADMIN_KEY = 'ops-admin-key-0123456789';
const PROVIDER_KEY = 'sk-ops-provider-secret';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Every JSON log line of the API and workers of this file (they share Nest's process-wide logger). */
const raw: string[] = [];
const lines: Array<Record<string, any>> = [];
const sink = {
  write(line: string): void {
    raw.push(line);
    lines.push(JSON.parse(line));
  },
};


/** Like GatewayHarness.startApi, with the log lines captured. */
async function startApi(gw: GatewayHarness, overrides: Record<string, string> = {}): Promise<NestFastifyApplication> {
  const api = await createApiApp(gw.config(overrides), { logDestination: sink });
  await api.listen(0, '127.0.0.1');
  gw.api = api;
  gw.url = (await api.getUrl()).replace('[::1]', '127.0.0.1');
  return api;
}

async function startWorker(gw: GatewayHarness): Promise<INestApplicationContext> {
  const worker = await createWorkerApp(gw.config(), { logDestination: sink });
  gw.workers.push(worker);
  return worker;
}

const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe('operations: metrics, readiness, workers, logs', () => {
  let fake: OpenAIFake;
  let gw: GatewayHarness;
  let worker: INestApplicationContext;
  let workerMetricsPort: number;

  beforeAll(async () => {
    fake = await OpenAIFake.start();
    workerMetricsPort = await freePort();
    gw = new GatewayHarness({
      OPENAI_API_KEY: PROVIDER_KEY,
      OPENAI_BASE_URL: fake.baseUrl,
      API_KEYS: API_KEY,
      ADMIN_API_KEYS: ADMIN_KEY,
      LOG_LEVEL: 'log',
      LOG_FORMAT: 'json',
      JOB_ATTEMPTS: '2',
      WORKER_HEARTBEAT_INTERVAL_MS: '200',
      WORKER_METRICS_PORT: String(workerMetricsPort),
      WORKER_METRICS_HOST: '127.0.0.1',
    });
    await startApi(gw);
  });

  afterAll(async () => {
    await gw?.close();
    await fake?.close();
  });

  const metricsOf = async (url: string, headers: Record<string, string> = auth(API_KEY)) => {
    const res = await fetch(url, { headers });
    expect(res.status).toBe(200);
    return parsePromText(await res.text());
  };

  it('/ready is 503 naming the queue without a worker, then 200 once a worker heartbeats; /health is up all along', async () => {
    expect((await gw.request('GET', '/health')).status).toBe(200);
    const before = await gw.request('GET', '/ready');
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ status: 'not_ready', redis: 'up', workers: { openai: 0 }, queues_without_workers: ['openai'] });
    expect(before.body.message).toContain('No live worker serves openai');

    worker = await startWorker(gw);
    const after = await eventually(async () => {
      const res = await gw.request('GET', '/ready');
      return res.status === 200 ? res : undefined;
    }, 10_000, '/ready 200');
    expect(after!.body).toEqual({ status: 'ready', redis: 'up', workers: { openai: 1 }, queues_without_workers: [] });
  });

  it('GET /v1/workers: 401 without a key, 403 with an API key, the worker list with an admin key', async () => {
    const none = await gw.request('GET', '/v1/workers');
    expect(none.status).toBe(401);
    const notAdmin = await gw.request('GET', '/v1/workers', undefined, auth(API_KEY));
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.error).toMatchObject({ type: 'ForbiddenError', code: 'admin_key_required' });
    const res = await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY));
    expect(res.status).toBe(200);
    expect(res.body.workers).toEqual([
      {
        id: expect.stringContaining(`-${process.pid}-`),
        hostname: expect.any(String),
        pid: process.pid,
        queues: ['openai'],
        concurrency: { openai: 32 },
        in_flight: { openai: 0 },
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        started_at: expect.any(String),
        last_seen: expect.any(String),
      },
    ]);
  });

  it('x-request-id is echoed, an invalid one replaced by a UUID; both reach the worker log line of their job', async () => {
    const ok = await gw.infer(chat('hello'), { ...auth(API_KEY), 'x-request-id': 'ops-req.1:abc' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-request-id')).toBe('ops-req.1:abc');

    fake.failNext({ status: 500 }, 2, '/chat/completions');
    const failed = await gw.infer(chat('fails'), { ...auth(API_KEY), 'x-request-id': 'not valid!' });
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('provider_unavailable');
    const generated = failed.headers.get('x-request-id')!;
    expect(generated).toMatch(UUID);

    const completed = await eventually(() => lines.find((l) => l.msg === 'job completed' && l.request_id === 'ops-req.1:abc'), 5000, 'job line');
    expect(completed).toMatchObject({ level: 'info', context: 'Jobs', job_id: expect.stringMatching(/^openai-/), queue: 'openai', model: 'gpt-4o-mini', task: 'chat' });
    const retried = lines.find((l) => l.msg === 'job attempt failed; it will be retried' && l.request_id === generated);
    expect(retried).toMatchObject({ level: 'warn', error_code: 'provider_unavailable', provider_status: 500 });
    const finalLine = lines.find((l) => l.msg === 'job failed' && l.request_id === generated);
    expect(finalLine).toMatchObject({ level: 'warn', error_code: 'provider_unavailable', provider_status: 500, attempt: 2 });

    const access = await eventually(() => lines.find((l) => l.msg === 'request' && l.request_id === 'ops-req.1:abc'), 5000, 'access line');
    expect(access!).toMatchObject({ method: 'POST', route: '/v1/inference', status: 200, context: 'Http' });
    expect(access!.duration_ms).toEqual(expect.any(Number));
    expect(Object.keys(access!).sort()).toEqual(['app', 'context', 'duration_ms', 'hostname', 'level', 'method', 'msg', 'pid', 'request_id', 'route', 'status', 'time']);
    expect(lines.find((l) => l.msg === 'request' && l.request_id === generated)).toMatchObject({ status: 503 });
  });

  it('API /metrics: HTTP requests by route and status, queue counts and live workers; it needs a key', async () => {
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(401);
    // Queue counts are cached for 2 s between scrapes: poll until the failed job shows.
    const s = (await eventually(async () => {
      const samples = await metricsOf(`${gw.url}/metrics`);
      return sampleValue(samples, 'gateway_queue_jobs', { queue: 'openai', state: 'failed' }) === 1 ? samples : undefined;
    }, 10_000, 'queue counts'))!;
    expect(sampleValue(s, 'gateway_http_requests_total', { method: 'POST', route: '/v1/inference', status: '200' })).toBe(1);
    expect(sampleValue(s, 'gateway_http_requests_total', { method: 'POST', route: '/v1/inference', status: '503' })).toBe(1);
    expect(sampleValue(s, 'gateway_http_request_duration_seconds_count', { method: 'POST', route: '/v1/inference', status: '200' })).toBe(1);
    expect(sampleValue(s, 'gateway_http_requests_total', { method: 'GET', route: '/v1/workers', status: '403' })).toBe(1);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'openai', state: 'completed' })).toBe(1);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'openai', state: 'waiting' })).toBe(0);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'openai', state: 'active' })).toBe(0);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'google', state: 'waiting' })).toBe(0);
    expect(sampleValue(s, 'gateway_workers', { queue: 'openai' })).toBe(1);
    expect(sampleValue(s, 'gateway_workers', { queue: 'google' })).toBe(0);
    // An admin key opens it too.
    expect(sampleValue(await metricsOf(`${gw.url}/metrics`, auth(ADMIN_KEY)), 'gateway_workers', { queue: 'openai' })).toBe(1);
  });

  it('worker metrics port: job outcomes, durations, queue wait and upstream errors by provider and status', async () => {
    const url = `http://127.0.0.1:${workerMetricsPort}/metrics`;
    const s = await metricsOf(url, {});
    const job = { queue: 'openai', provider: 'openai', model: 'gpt-4o-mini', task: 'chat' };
    expect(sampleValue(s, 'gateway_jobs_total', { ...job, outcome: 'completed' })).toBe(1);
    expect(sampleValue(s, 'gateway_jobs_total', { ...job, outcome: 'retry' })).toBe(1);
    expect(sampleValue(s, 'gateway_jobs_total', { ...job, outcome: 'failed' })).toBe(1);
    expect(sampleValue(s, 'gateway_job_duration_seconds_count', { ...job, outcome: 'completed' })).toBe(1);
    expect(sampleValue(s, 'gateway_job_queue_wait_seconds_count', job)).toBe(2);
    expect(sampleValue(s, 'gateway_upstream_errors_total', { provider: 'openai', status: '500' })).toBe(2);
    expect(sampleValue(s, 'gateway_worker_jobs_in_flight', { queue: 'openai' })).toBe(0);
    expect((await fetch(`http://127.0.0.1:${workerMetricsPort}/health`)).status).toBe(200);
  });

  it('a running job shows as in flight in the heartbeat and the worker metrics, and leaves them when done', async () => {
    fake.hang('/chat/completions');
    const res = await gw.infer(chat('slow'), { ...auth(API_KEY), prefer: 'respond-async' });
    expect(res.status).toBe(202);
    await fake.waitForRequests(1, '/chat/completions');
    await eventually(async () => {
      const list = await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY));
      return list.body.workers[0]?.in_flight.openai === 1;
    }, 10_000, 'in_flight 1 in the heartbeat');
    const s = await metricsOf(`http://127.0.0.1:${workerMetricsPort}/metrics`, {});
    expect(sampleValue(s, 'gateway_worker_jobs_in_flight', { queue: 'openai' })).toBe(1);
    fake.release();
    await eventually(async () => (await gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`, undefined, auth(API_KEY))).body.status === 'COMPLETED', 10_000, 'job completed');
    fake.reset();
    await eventually(async () => {
      const list = await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY));
      return list.body.workers[0]?.in_flight.openai === 0;
    }, 10_000, 'in_flight 0 in the heartbeat');
  });

  it('a second worker whose metrics port is taken warns and still serves; both are listed and counted', async () => {
    const second = await startWorker(gw);
    expect(lines.some((l) => l.level === 'warn' && l.context === 'WorkerMetrics' && l.msg.includes('metrics endpoint not started'))).toBe(true);
    const list = await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY));
    expect(list.body.workers).toHaveLength(2);
    const s = (await eventually(async () => {
      const samples = await metricsOf(`${gw.url}/metrics`);
      return sampleValue(samples, 'gateway_workers', { queue: 'openai' }) === 2 ? samples : undefined;
    }, 10_000, 'two workers in gateway_workers'))!;
    expect(sampleValue(s, 'gateway_workers', { queue: 'openai' })).toBe(2);
    const res = await gw.infer(chat('either'), auth(API_KEY));
    expect(res.status).toBe(200);
    await gw.stopWorker(second);
    expect((await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY))).body.workers).toHaveLength(1);
    // The first worker's endpoint was not disturbed.
    expect((await fetch(`http://127.0.0.1:${workerMetricsPort}/health`)).status).toBe(200);
  });

  it('a worker that stops cleanly leaves at once: /ready is 503 again and /v1/workers is empty', async () => {
    await gw.stopWorker(worker);
    // No waiting: the heartbeat is removed on shutdown, not left to expire.
    const ready = await gw.request('GET', '/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.queues_without_workers).toEqual(['openai']);
    const list = await gw.request('GET', '/v1/workers', undefined, auth(ADMIN_KEY));
    expect(list.body.workers).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${workerMetricsPort}/metrics`)).rejects.toThrow();
  });

  it('without ADMIN_API_KEYS, GET /v1/workers answers 403 saying how to turn it on; METRICS_PUBLIC opens /metrics', async () => {
    const other = new GatewayHarness(gw.env({ ADMIN_API_KEYS: '', METRICS_PUBLIC: 'true' }), gw.prefix);
    await startApi(other);
    try {
      // METRICS_PUBLIC=true: /metrics needs no key (while every other route still does).
      const scrape = await fetch(`${other.url}/metrics`);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toContain('gateway_build_info{');
      expect((await other.request('GET', '/v1/inference/jobs/openai-x')).status).toBe(401);
      const res = await other.request('GET', '/v1/workers', undefined, auth(API_KEY));
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ type: 'ForbiddenError', code: 'admin_disabled' });
      expect(res.body.error.message).toContain('set ADMIN_API_KEYS');
    } finally {
      await other.api!.close();
    }
  });

  it('no log line carries an API key, an admin key, the provider key or an Authorization value', () => {
    expect(lines.length).toBeGreaterThan(10);
    const all = raw.join('');
    for (const secret of [API_KEY, ADMIN_KEY, PROVIDER_KEY, 'Bearer']) expect(all).not.toContain(secret);
  });
});
