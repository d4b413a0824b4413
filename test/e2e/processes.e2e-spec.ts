import { useOpenAIGateway } from '../support/gateway-harness';
import { spawnApp, Spawned } from '../support/spawned';

/**
 * Real worker and API processes (built by `npm test`), for what only a process shows: start-up
 * errors, a worker that starts after the request was accepted, and SIGTERM.
 */
describe('processes', () => {
  // No worker in this process: jobs run only in the spawned ones.
  const t = useOpenAIGateway({}, { worker: false });
  const spawned: Spawned[] = [];
  afterAll(() => {
    for (const p of spawned) p.child.kill('SIGKILL');
  });
  const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

  const worker = (extra: Record<string, string> = {}): Spawned => {
    const p = spawnApp('worker', t.gw.env({ LOG_LEVEL: 'log', ...extra }));
    spawned.push(p);
    return p;
  };

  /** Nest re-raises the signal after its shutdown hooks, so a clean stop ends "by SIGTERM". */
  const stoppedCleanly = async (p: Spawned): Promise<void> => {
    expect([0, 'SIGTERM']).toContain(await p.exited);
  };

  it('a worker started after the request was accepted still completes it, and stops cleanly on SIGTERM', async () => {
    const res = await t.gw.infer(chat('accepted first'), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const w = worker();
    await w.waitFor('serving openai');
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.result.data.text).toBe('echo: accepted first');
    w.child.kill('SIGTERM');
    await stoppedCleanly(w);
    expect(w.output()).toContain('stopped: every job finished or handed back');
  });

  it('SIGTERM lets a running job finish within the grace period, then the worker stops', async () => {
    const w = worker({ WORKER_SHUTDOWN_GRACE_MS: '10000' });
    await w.waitFor('serving openai');
    t.fake.setLatency(1500);
    const res = await t.gw.infer(chat('finish me'), { prefer: 'respond-async' });
    await t.fake.waitForRequests(1, '/chat/completions');
    w.child.kill('SIGTERM');
    await stoppedCleanly(w);
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status !== 'IN_PROGRESS' && v.status !== 'PENDING', 2000);
    expect(view.status).toBe('COMPLETED');
    expect(view.attempts).toBe(1);
  });

  it('past the grace period a running job is handed back, uncharged, and the next worker completes it', async () => {
    const first = worker({ WORKER_SHUTDOWN_GRACE_MS: '300' });
    await first.waitFor('serving openai');
    t.fake.hang('/chat/completions');
    const res = await t.gw.infer(chat('hand me back'), { prefer: 'respond-async' });
    await t.fake.waitForRequests(1, '/chat/completions');
    first.child.kill('SIGTERM');
    await stoppedCleanly(first);
    expect(first.output()).toContain('handing running jobs back');
    const waiting = await t.gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`);
    expect(waiting.body.status).toBe('PENDING');
    t.fake.release();
    t.fake.reset();
    const second = worker();
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.result.data.text).toBe('echo: hand me back');
    expect(t.fake.count('/chat/completions')).toBe(1);
    second.child.kill('SIGTERM');
    await stoppedCleanly(second);
  });

  it('a missing Redis is one line that says how to start one, and exit code 1', async () => {
    for (const app of ['api', 'worker'] as const) {
      const p = spawnApp(app, { REDIS_URL: 'redis://127.0.0.1:1', OPENAI_API_KEY: 'k' });
      expect(await p.exited).toBe(1);
      const lines = p.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('Cannot reach Redis at redis://127.0.0.1:1');
      expect(lines[0]).toContain('redis-server');
    }
  });

  it('bad configuration lists every problem and how to fix it, and exits 1', async () => {
    const p = spawnApp('api', { PORT: 'eighty', WORKER_QUEUES: 'openai,bogus', HOST: '0.0.0.0' });
    expect(await p.exited).toBe(1);
    const out = p.output();
    expect(out).toContain('PORT=eighty must be a whole number');
    expect(out).toContain('WORKER_QUEUES names unknown queue(s) bogus');
    expect(out).toContain('API_KEYS is empty');
    expect(out).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a worker refuses to serve a queue it has no provider for', async () => {
    const p = spawnApp('worker', t.gw.env({ WORKER_QUEUES: 'anthropic', OPENAI_API_KEY: 'k' }));
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('WORKER_QUEUES names anthropic, which this worker cannot serve');
  });

  it('without API_KEYS the API binds to loopback only and says why', async () => {
    const api = spawnApp('api', t.gw.env({ PORT: '0', LOG_LEVEL: 'log' }));
    spawned.push(api);
    await api.waitFor('listening on');
    expect(api.output()).toContain('API_KEYS is empty');
    expect(api.output()).toMatch(/listening on http:\/\/127\.0\.0\.1:/);
    api.child.kill('SIGTERM');
    await stoppedCleanly(api);
  });
});
