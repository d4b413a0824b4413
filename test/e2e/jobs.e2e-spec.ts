import { GatewayHarness, eventually, useOpenAIGateway } from '../support/gateway-harness';

/** Sync, async, polling and cancel, as DESIGN.md "Sync, async and polling" describes them. */
describe('jobs: sync, async, polling, cancel', () => {
  const t = useOpenAIGateway({ SYNC_TIMEOUT_MS: '30000' });
  const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

  it('Prefer: respond-async answers 202 at once with a job reference and Location; polling shows the result', async () => {
    const res = await t.gw.infer(chat('later'), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ job_id: expect.stringMatching(/^openai-/), status: 'PENDING', status_url: `/v1/inference/jobs/${res.body.job_id}` });
    expect(res.headers.get('location')).toBe(res.body.status_url);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
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
    const impatient = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl, SYNC_TIMEOUT_MS: '300' }, t.gw.prefix);
    await impatient.startApi();
    t.fake.setLatency(1000);
    const res = await impatient.infer(chat('slow'));
    await impatient.api!.close();
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('IN_PROGRESS');
    expect(res.headers.get('location')).toBe(res.body.status_url);
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.result.data.text).toBe('echo: slow');
    expect(view.result.latency_ms).toBeGreaterThanOrEqual(1000);
  });

  it('Prefer: wait=N shortens the synchronous wait below SYNC_TIMEOUT_MS, never lengthens it', async () => {
    t.fake.setLatency(200);
    const shortened = await t.gw.infer(chat('w'), { prefer: 'wait=0' });
    expect(shortened.status).toBe(202);
    // Left running, it would still be active when the next tests look at the active jobs.
    await t.gw.pollJob(shortened.body.job_id, (v) => v.status === 'COMPLETED');
    t.fake.setLatency(0);
    const fine = await t.gw.infer(chat('w2'), { prefer: 'wait=100' });
    expect(fine.body.data.text).toBe('echo: w2');
    expect(fine.status).toBe(200);
  });

  it('DELETE of a running job aborts the provider call; the job reads CANCELED', async () => {
    t.fake.hang('/chat/completions');
    const res = await t.gw.infer(chat('never'), { prefer: 'respond-async' });
    await t.fake.waitForRequests(1, '/chat/completions');
    await t.gw.pollJob(res.body.job_id, (v) => v.status === 'IN_PROGRESS');
    const del = await t.gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ status: 'CANCELED', error: { code: 'job_canceled' } });
    const view = await t.gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`);
    expect(view.body.status).toBe('CANCELED');
    expect(t.fake.count('/chat/completions')).toBe(1);
    t.fake.release();
  });

  it('a sync client waiting on a job that gets canceled is answered at once with job_canceled', async () => {
    t.fake.hang('/chat/completions');
    const pending = t.gw.infer(chat('wait-then-cancel'), {});
    await t.fake.waitForRequests(1, '/chat/completions');
    const queued = await t.gw.api!.get((await import('@lib/queue')).QueueRegistry).get('openai' as any).getJobs(['active']);
    expect(queued).toHaveLength(1);
    await t.gw.request('DELETE', `/v1/inference/jobs/${queued[0].id}`);
    const res = await pending;
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('job_canceled');
    t.fake.release();
  });

  it('DELETE of a waiting job removes it before any worker runs it; DELETE of a finished job changes nothing', async () => {
    const worker = t.gw.workers[0];
    await t.gw.stopWorker(worker);
    try {
      const res = await t.gw.infer(chat('queued'), { prefer: 'respond-async' });
      const del = await t.gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
      expect(del.status).toBe(200);
      expect(del.body).toMatchObject({ job_id: res.body.job_id, status: 'CANCELED', attempts: 0 });
      const view = await t.gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`);
      expect(view.body.status).toBe('CANCELED');
    } finally {
      await t.gw.startWorker();
    }
    const done = await t.gw.infer(chat('done'));
    expect(done.status).toBe(200);
    const finished = await t.gw.infer(chat('finished'), { prefer: 'respond-async' });
    await t.gw.pollJob(finished.body.job_id, (v) => v.status === 'COMPLETED');
    const del = await t.gw.request('DELETE', `/v1/inference/jobs/${finished.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body.status).toBe('COMPLETED');
    // The canceled job never reached the provider.
    expect(t.fake.requests.map((r) => (r.body as any).messages[0].content[0].text)).not.toContain('queued');
  });

  it('a part enqueued after its parent was canceled ends canceled without a provider call', async () => {
    // The race a long media job has: its parent still cuts and enqueues parts after DELETE read
    // its list of children. Such a part must not run; the parent's cancel flag stops it.
    const { QueueRegistry, RedisKeys, REDIS } = await import('@lib/queue');
    const { decodeFailure, JobName } = await import('@lib/contracts');
    const { Queue } = await import('bullmq');
    const queue = t.gw.api!.get(QueueRegistry).get('openai' as any);
    const redis = t.gw.api!.get(REDIS);
    const keys = t.gw.api!.get(RedisKeys);
    const template = await t.gw.infer(chat('template'), { prefer: 'respond-async' });
    const done = await t.gw.pollJob(template.body.job_id, (v) => v.status === 'COMPLETED');
    expect(done.status).toBe('COMPLETED');
    const data = (await queue.getJob(template.body.job_id))!.data;
    // A parent no worker serves, canceled as DELETE cancels it: flag first.
    const connection = redis.duplicate();
    const parents = new Queue('test-parents', { connection, prefix: t.gw.prefix });
    try {
      await parents.add('parent', {}, { jobId: 'p-late' });
      await redis.set(keys.cancelFlag('p-late'), '{}', 'EX', 60);
      const before = t.fake.count('/chat/completions');
      await queue.add(JobName.Inference, data, {
        jobId: 'openai-p-late-m2of3',
        parent: { id: 'p-late', queue: parents.qualifiedName },
      });
      await eventually(async () => (await queue.getJob('openai-p-late-m2of3'))?.finishedOn !== undefined, 10_000, 'the late part ended');
      const part = (await queue.getJob('openai-p-late-m2of3'))!;
      expect(decodeFailure(part.failedReason)).toMatchObject({ canceled: true, error: { code: 'job_canceled' } });
      expect(t.fake.count('/chat/completions')).toBe(before);
    } finally {
      await parents.close();
      connection.disconnect(); // a connection given to BullMQ stays the giver's to close
    }
  });

  it('large results are not put in the completion notice but still reach the sync client', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
    const res = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { texts } }, {});
    expect(res.status).toBe(200);
    expect(res.body.data.embeddings).toHaveLength(40);
    expect(JSON.stringify(res.body).length).toBeGreaterThan(256 * 1024);
  });

  it('base64 media blobs are deleted from Redis once their job ends', async () => {
    const audio = Buffer.alloc(100_000, 1);
    Buffer.from('ID3').copy(audio);
    const res = await t.gw.infer({ provider: 'openai', model: 'whisper-1', inputs: { audio_base64: audio.toString('base64') } }, {});
    expect(res.status).toBe(200);
    const redis = t.gw.api!.get((await import('@lib/queue')).REDIS);
    await eventually(async () => (await redis.keys(`${t.gw.prefix}:blob:*`)).length === 0, 5000, 'blob deletion');
  });
});
