import { OpenAIFake } from '../fakes/openai-fake';
import { eventually, GatewayHarness } from '../support/gateway-harness';

/** Sync, async, polling and cancel, as DESIGN.md "Sync, async and polling" describes them. */
describe('jobs: sync, async, polling, cancel', () => {
  let fake: OpenAIFake;
  let gw: GatewayHarness;
  const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

  beforeAll(async () => {
    fake = await OpenAIFake.start();
    gw = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: fake.baseUrl, SYNC_TIMEOUT_MS: '30000' });
    await gw.startApi();
    await gw.startWorker();
  });
  afterAll(async () => {
    await gw.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('Prefer: respond-async answers 202 at once with a job reference and Location; polling shows the result', async () => {
    const res = await gw.infer(chat('later'), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ job_id: expect.stringMatching(/^openai-/), status: 'PENDING', status_url: `/v1/inference/jobs/${res.body.job_id}` });
    expect(res.headers.get('location')).toBe(res.body.status_url);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    const view = await gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view).toMatchObject({
      job_id: res.body.job_id,
      status: 'COMPLETED',
      attempts: 1,
      result: { data: { text: 'echo: later', finish_reason: 'stop' }, provider: 'openai', model: 'gpt-4o-mini', cached: false },
    });
    for (const field of ['created_at', 'started_at', 'finished_at']) expect(Date.parse(view[field])).not.toBeNaN();
    expect(Date.parse(view.finished_at)).toBeGreaterThanOrEqual(Date.parse(view.started_at));
    expect(view.error).toBeUndefined();
  });

  it('a job outliving SYNC_TIMEOUT_MS answers 202 IN_PROGRESS, then completes and is pollable', async () => {
    // A second API on the same queues, with a short synchronous wait.
    const impatient = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: fake.baseUrl, SYNC_TIMEOUT_MS: '300' }, gw.prefix);
    await impatient.startApi();
    fake.setLatency(1000);
    const res = await impatient.infer(chat('slow'));
    await impatient.api!.close();
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('IN_PROGRESS');
    expect(res.headers.get('location')).toBe(res.body.status_url);
    const view = await gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.result.data.text).toBe('echo: slow');
    expect(view.result.latency_ms).toBeGreaterThanOrEqual(1000);
  });

  it('Prefer: wait=N shortens the synchronous wait below SYNC_TIMEOUT_MS, never lengthens it', async () => {
    fake.setLatency(200);
    const shortened = await gw.infer(chat('w'), { prefer: 'wait=0' });
    expect(shortened.status).toBe(202);
    fake.setLatency(0);
    const fine = await gw.infer(chat('w2'), { prefer: 'wait=100' });
    expect(fine.body.data.text).toBe('echo: w2');
    expect(fine.status).toBe(200);
  });

  it('DELETE of a running job aborts the provider call; the job reads CANCELED', async () => {
    fake.hang('/chat/completions');
    const res = await gw.infer(chat('never'), { prefer: 'respond-async' });
    await fake.waitForRequests(1, '/chat/completions');
    await gw.pollJob(res.body.job_id, (v) => v.status === 'IN_PROGRESS');
    const del = await gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ status: 'CANCELED', error: { code: 'job_canceled' } });
    const view = await gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`);
    expect(view.body.status).toBe('CANCELED');
    expect(fake.count('/chat/completions')).toBe(1);
    fake.release();
  });

  it('a sync client waiting on a job that gets canceled is answered at once with job_canceled', async () => {
    fake.hang('/chat/completions');
    const pending = gw.infer(chat('wait-then-cancel'), {});
    await fake.waitForRequests(1, '/chat/completions');
    const queued = await gw.api!.get((await import('@lib/queue')).QueueRegistry).get('openai' as any).getJobs(['active']);
    expect(queued).toHaveLength(1);
    await gw.request('DELETE', `/v1/inference/jobs/${queued[0].id}`);
    const res = await pending;
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('job_canceled');
    fake.release();
  });

  it('DELETE of a waiting job removes it before any worker runs it; DELETE of a finished job changes nothing', async () => {
    const worker = gw.workers[0];
    await gw.stopWorker(worker);
    try {
      const res = await gw.infer(chat('queued'), { prefer: 'respond-async' });
      const del = await gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
      expect(del.status).toBe(200);
      expect(del.body).toMatchObject({ job_id: res.body.job_id, status: 'CANCELED', attempts: 0 });
      const view = await gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`);
      expect(view.body.status).toBe('CANCELED');
    } finally {
      await gw.startWorker();
    }
    const done = await gw.infer(chat('done'));
    expect(done.status).toBe(200);
    const finished = await gw.infer(chat('finished'), { prefer: 'respond-async' });
    await gw.pollJob(finished.body.job_id, (v) => v.status === 'COMPLETED');
    const del = await gw.request('DELETE', `/v1/inference/jobs/${finished.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body.status).toBe('COMPLETED');
    // The canceled job never reached the provider.
    expect(fake.requests.map((r) => (r.body as any).messages[0].content[0].text)).not.toContain('queued');
  });

  it('large results are not put in the completion notice but still reach the sync client', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
    const res = await gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { texts } }, {});
    expect(res.status).toBe(200);
    expect(res.body.data.embeddings).toHaveLength(40);
    expect(JSON.stringify(res.body).length).toBeGreaterThan(256 * 1024);
  });

  it('base64 media blobs are deleted from Redis once their job ends', async () => {
    const audio = Buffer.alloc(100_000, 1);
    Buffer.from('ID3').copy(audio);
    const res = await gw.infer({ provider: 'openai', model: 'whisper-1', inputs: { audio_base64: audio.toString('base64') } }, {});
    expect(res.status).toBe(200);
    const redis = gw.api!.get((await import('@lib/queue')).REDIS);
    await eventually(async () => (await redis.keys(`${gw.prefix}:blob:*`)).length === 0, 5000, 'blob deletion');
  });
});
