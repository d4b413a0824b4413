import 'reflect-metadata';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { GatewayConfig, loadConfig } from '@lib/config';
import { OpenAIFake, OpenAIFakeOptions } from '../fakes/openai-fake';
import { createApiApp } from '../../apps/api/src/api.factory';
import { createWorkerApp } from '../../apps/worker/src/worker.factory';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * An API and any number of workers in this process, on a queue prefix of their own, against
 * the real Redis. `env` is the gateway's environment (nothing is read from process.env but
 * REDIS_URL), so each test file states the configuration it runs with.
 */
export class GatewayHarness {
  readonly prefix: string;
  readonly workers: INestApplicationContext[] = [];
  api?: NestFastifyApplication;
  url = '';
  private readonly baseEnv: Record<string, string>;

  /** `prefix`: share another harness's queues (e.g. a second API with other settings). */
  constructor(env: Record<string, string>, prefix?: string) {
    this.prefix = prefix ?? `t${randomBytes(4).toString('hex')}`;
    this.baseEnv = {
      REDIS_URL,
      QUEUE_PREFIX: this.prefix,
      LOG_LEVEL: 'error',
      RETRY_BASE_DELAY_MS: '20',
      RETRY_MAX_DELAY_MS: '2000',
      SYNC_SWEEP_INTERVAL_MS: '500',
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      // BullMQ's stalled checker can start one last timer of lockDuration/2 while a worker
      // closes; a short lock keeps that tail (which holds Jest open) to a second.
      WORKER_LOCK_DURATION_MS: '2000',
      // The shipped provider limits would throttle load tests; tests that test limits bring theirs.
      RATE_LIMITS_FILE: 'none',
      ...env,
    };
  }

  env(overrides: Record<string, string> = {}): Record<string, string> {
    return { ...this.baseEnv, ...overrides };
  }

  config(overrides: Record<string, string> = {}): GatewayConfig {
    return loadConfig(this.env(overrides));
  }

  async startApi(overrides: Record<string, string> = {}): Promise<this> {
    this.api = await createApiApp(this.config(overrides));
    await this.api.listen(0, '127.0.0.1');
    this.url = await this.api.getUrl();
    this.url = this.url.replace('[::1]', '127.0.0.1');
    return this;
  }

  async startWorker(overrides: Record<string, string> = {}): Promise<INestApplicationContext> {
    const worker = await createWorkerApp(this.config(overrides));
    await worker.init();
    this.workers.push(worker);
    return worker;
  }

  async stopWorker(worker: INestApplicationContext): Promise<void> {
    const i = this.workers.indexOf(worker);
    if (i >= 0) this.workers.splice(i, 1);
    await worker.close();
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.url + path, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  infer<T = any>(body: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
    return this.request<T>('POST', '/v1/inference', body, headers);
  }

  /** Polls the job until `until` says stop (events are not exposed over HTTP; this is the client's view). */
  async pollJob(jobId: string, until: (view: any) => boolean, timeoutMs = 15_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await this.request('GET', `/v1/inference/jobs/${jobId}`);
      if (res.status === 200 && until(res.body)) return res.body;
      if (Date.now() > deadline) throw new Error(`job ${jobId} did not reach the expected state; last: ${JSON.stringify(res.body)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    for (const worker of this.workers.splice(0)) await worker.close().catch(() => undefined);
    await this.api?.close().catch(() => undefined);
    await deleteKeys(`${this.prefix}:*`);
  }
}

/** Removes every key of a test's prefix, so runs leave Redis as they found it. */
export async function deleteKeys(pattern: string): Promise<void> {
  const redis = new IORedis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Resolves when `check` returns truthy; polls, never sleeps a fixed time. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What every provider fake offers the set-up below. */
interface StartedFake {
  reset(): void;
  close(): Promise<void>;
}

/**
 * For a describe block: provider fakes and a gateway in front of them (API, and one in-process
 * worker unless `worker: false`), torn down after the block; every fake is reset before each
 * test. `start` names each fake's starter; `envFor` gives the gateway the variables that point
 * it at them.
 */
export function useGatewayWithFakes<T extends Record<string, StartedFake>>(
  start: { [K in keyof T]: () => Promise<T[K]> },
  envFor: (fakes: T) => Record<string, string>,
  env: Record<string, string> = {},
  options: { worker?: boolean } = {},
): { fakes: T; gw: GatewayHarness } {
  const ctx = {} as { fakes: T; gw: GatewayHarness };
  const all = (): StartedFake[] => (ctx.fakes ? Object.values(ctx.fakes) : []);
  beforeAll(async () => {
    const names = Object.keys(start) as Array<keyof T>;
    const started = await Promise.all(names.map((name) => start[name]()));
    ctx.fakes = Object.fromEntries(names.map((name, i) => [name, started[i]])) as unknown as T;
    ctx.gw = new GatewayHarness({ ...envFor(ctx.fakes), ...env });
    await ctx.gw.startApi();
    if (options.worker !== false) await ctx.gw.startWorker();
  });
  afterAll(async () => {
    await ctx.gw?.close();
    await Promise.all(all().map((fake) => fake.close()));
  });
  beforeEach(() => all().forEach((fake) => fake.reset()));
  return ctx;
}

/** The same with one fake, as `fake`. */
export function useGatewayWithFake<F extends StartedFake>(
  startFake: () => Promise<F>,
  envFor: (fake: F) => Record<string, string>,
  env: Record<string, string> = {},
  options: { worker?: boolean } = {},
): { fake: F; gw: GatewayHarness } {
  const ctx = useGatewayWithFakes({ fake: startFake }, ({ fake }) => envFor(fake), env, options);
  return {
    get fake() {
      return ctx.fakes.fake;
    },
    get gw() {
      return ctx.gw;
    },
  };
}

/** The same with the OpenAI fake, the provider most tests speak to. */
export function useOpenAIGateway(
  env: Record<string, string> = {},
  options: { worker?: boolean; fake?: OpenAIFakeOptions } = {},
): { fake: OpenAIFake; gw: GatewayHarness } {
  return useGatewayWithFake(
    () => OpenAIFake.start(options.fake),
    (fake) => ({ OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.baseUrl }),
    env,
    options,
  );
}
