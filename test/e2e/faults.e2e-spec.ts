import { freePort } from '../support/free-port';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OpenAIFake } from '../fakes/openai-fake';
import { GatewayHarness, useOpenAIGateway } from '../support/gateway-harness';
import { spawnApp, Spawned } from '../support/spawned';

const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

describe('faults: a worker killed with SIGKILL mid-job', () => {
  // The API runs here; jobs run only in spawned worker processes.
  const t = useOpenAIGateway({}, { worker: false });
  const spawned: Spawned[] = [];
  afterAll(() => {
    for (const p of spawned) p.child.kill('SIGKILL');
  });
  const worker = (): Spawned => {
    const p = spawnApp('worker', t.gw.env({ LOG_LEVEL: 'log' }));
    spawned.push(p);
    return p;
  };

  it('another worker recovers the job: the waiting sync client gets its answer, a client past its wait can poll it', async () => {
    const doomed = worker();
    await doomed.waitFor('serving openai');
    t.fake.hang('/chat/completions');
    const syncClient = t.gw.infer(chat('survive'), { prefer: 'wait=60' });
    const impatient = t.gw.infer(chat('poll me'), { prefer: 'wait=1' });
    await t.fake.waitForRequests(2, '/chat/completions');
    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toBe('SIGKILL');

    const early = await impatient;
    expect(early.status).toBe(202);
    t.fake.release();
    const rescuer = worker();
    await rescuer.waitFor('serving openai');

    // The lock of the dead worker lapses (2 s here) and the rescuer's stalled check takes the jobs.
    const res = await syncClient;
    expect(res.status).toBe(200);
    expect(res.body.data.text).toBe('echo: survive');
    const view = await t.gw.pollJob(early.body.job_id, (v) => v.status === 'COMPLETED', 20_000);
    expect(view.result.data.text).toBe('echo: poll me');
    expect(t.fake.count('/chat/completions')).toBe(4);
    rescuer.child.kill('SIGTERM');
    await rescuer.exited;
  });
});


describe('three worker processes share one provider limit', () => {
  // The gateway is given 600 RPM and 6,000 TPM, and so is the fake (which answers 429 past
  // them). Each job costs 102 tokens (a short prompt + max_tokens 100): tokens bind. Zero 429s
  // at full load is what bench/ratelimit measures; here the pacing across processes is checked.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-limits-'));
  const limits = path.join(dir, 'limits.yaml');
  fs.writeFileSync(limits, 'providers:\n  openai:\n    rpm: 600\n    tpm: 6000\n');
  const t = useOpenAIGateway({ RATE_LIMITS_FILE: limits }, { worker: false, fake: { rpm: 600, tpm: 6000 } });
  const spawned: Spawned[] = [];
  afterAll(() => {
    for (const p of spawned) p.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('together they pace calls to the shared token rate (unshared, the three would send all ten at once)', async () => {
    for (let i = 0; i < 3; i++) spawned.push(spawnApp('worker', t.gw.env({ LOG_LEVEL: 'log', WORKER_METRICS_PORT: '0' })));
    await Promise.all(spawned.map((w) => w.waitFor('serving openai')));
    const body = (i: number) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [`job ${i}`] }, parameters: { max_tokens: 100 } });
    const accepted = await Promise.all(Array.from({ length: 10 }, (_, i) => t.gw.infer(body(i), { prefer: 'respond-async' })));
    const views = await Promise.all(accepted.map((r) => t.gw.pollJob(r.body.job_id, (v) => v.status === 'COMPLETED', 30_000)));
    views.forEach((v, i) => {
      expect(v.result.data.text).toBe(`echo: job ${i}`);
      expect(v.attempts).toBe(1);
    });
    expect(t.fake.rateLimit.refused).toBe(0);
    expect(t.fake.rateLimit.admitted).toBe(10);
    const at = t.fake.requests.map((r) => r.at).sort((a, b) => a - b);
    // 6,000 TPM less 3 % = 97 tokens a second: after a burst of one, 9 calls of 102 tokens get
    // slots ~1.05 s apart (~9.5 s in all), and no slower than that. (Single gaps can be shorter:
    // a job that wakes late on a busy machine lands close to the next one.)
    expect(at[9] - at[0]).toBeGreaterThanOrEqual(8_000);
    expect(at[9] - at[0]).toBeLessThan(14_000);
    for (const w of spawned) w.child.kill('SIGTERM');
    await Promise.all(spawned.map((w) => w.exited));
  });
});

/** A private Redis that keeps its data in an append-only file, as the compose file's does. */
class PersistentRedis {
  private child?: ChildProcess;

  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    this.child.on('error', () => undefined);
    for (let i = 0; i < 100; i++) {
      try {
        if (execFileSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'PONG') return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis-server on port ${this.port} did not start (is redis-server installed?)`);
  }

  /** SHUTDOWN: what a restart by an orchestrator does (the AOF is complete on disk). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      execFileSync('redis-cli', ['-p', String(this.port), 'shutdown'], { stdio: 'ignore' });
    } catch {
      // the connection drops as it shuts down
    }
    await exited;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }
}

describe('faults: Redis restarted under load', () => {
  let fake: OpenAIFake;
  let redis: PersistentRedis;
  let gw: GatewayHarness;
  let dir: string;
  const spawned: Spawned[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-redis-'));
    redis = new PersistentRedis(await freePort(), dir);
    await redis.start();
    fake = await OpenAIFake.start({ latencyMs: 100 });
    gw = new GatewayHarness({ REDIS_URL: redis.url, OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl });
    await gw.startApi();
  });
  afterAll(async () => {
    for (const p of spawned) p.child.kill('SIGKILL');
    await gw.api?.close().catch(() => undefined);
    await fake.close();
    redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('API and workers reconnect by themselves and every accepted job completes', async () => {
    const worker = spawnApp('worker', gw.env({ LOG_LEVEL: 'log', REDIS_URL: redis.url, WORKER_CONCURRENCY: '4' }));
    spawned.push(worker);
    await worker.waitFor('serving openai');

    const accepted = await Promise.all(Array.from({ length: 30 }, (_, i) => gw.infer(chat(`job ${i}`), { prefer: 'respond-async' })));
    for (const res of accepted) expect(res.status).toBe(202);
    await fake.waitForRequests(4, '/chat/completions');

    await redis.stop();
    // Sent while Redis is down: it is held until Redis is back, or refused with a clear 503.
    const duringRequest = gw.infer(chat('during'), { prefer: 'respond-async' });
    await new Promise((r) => setTimeout(r, 300));
    await redis.start();
    const during = await duringRequest;

    const views = await Promise.all(accepted.map((res) => gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED', 45_000)));
    views.forEach((view, i) => expect(view.result.data.text).toBe(`echo: job ${i}`));
    expect([202, 503]).toContain(during.status);
    if (during.status === 503) expect(during.body.error.code).toBe('queue_unavailable');

    const after = await gw.infer(chat('after the restart'));
    expect(after.status).toBe(200);
    expect(after.body.data.text).toBe('echo: after the restart');
    expect(worker.child.exitCode).toBeNull();
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});
