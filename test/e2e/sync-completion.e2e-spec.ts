import IORedis from 'ioredis';
import { eventually, REDIS_URL, useOpenAIGateway } from '../support/gateway-harness';

/**
 * The sync path hears of a job's end from the completion notice published on the waiting API
 * process's channel (sync-waiter.service.ts): by Redis, right behind the job's completion, from
 * a script the worker writes after moveToFinished (finish-notices.ts), or by the worker itself
 * (failures, and completions that script did not announce). The sweeper that re-reads waiting
 * jobs on a timer is set to 10 minutes here, so every answer below within SYNC_TIMEOUT_MS came
 * through a notice, or through the re-read the API makes when its subscriber reconnects.
 */
describe('sync completion through completion notices (sweeper off)', () => {
  const t = useOpenAIGateway({ SYNC_TIMEOUT_MS: '8000', SYNC_SWEEP_INTERVAL_MS: '600000' });
  const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

  it('a completed job answers 200 with its result, and the job already reads COMPLETED', async () => {
    const res = await t.gw.infer(chat('notice'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { text: 'echo: notice' }, cached: false });
    // Read before anything else: the notice goes out only once the job is stored as completed.
    const [jobId] = await withRedis((r) => r.zrevrange(`${t.gw.prefix}:openai:completed`, 0, 0));
    const view = await t.gw.request('GET', `/v1/inference/jobs/${jobId}`);
    expect(view.body).toMatchObject({ status: 'COMPLETED', result: { data: { text: 'echo: notice' } } });
  });

  it('twenty concurrent requests each get their own answer', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => t.gw.infer(chat(`n${i}`))));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(all.map((r) => r.body.data.text)).toEqual(Array.from({ length: 20 }, (_, i) => `echo: n${i}`));
  });

  it('a result over 256 KB (not carried in the notice) is read from the job at once', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
    const res = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { texts } });
    expect(res.status).toBe(200);
    expect(res.body.data.embeddings).toHaveLength(40);
    expect(JSON.stringify(res.body).length).toBeGreaterThan(256 * 1024);
  });

  it('a final failure (provider 400) answers with its error', async () => {
    t.fake.failNext({ status: 400, body: { error: { message: 'Bad temperature', type: 'invalid_request_error', param: 'temperature', code: null } } }, 1);
    const res = await t.gw.infer(chat('bad'));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'BadRequestError', message: expect.stringContaining('Bad temperature') });
  });

  it('a waiting job canceled by DELETE answers the sync client at once', async () => {
    await t.gw.stopWorker(t.gw.workers[0]);
    try {
      const sync = t.gw.infer(chat('never runs'));
      const jobId = await eventually(async () => (await withRedis((r) => r.lrange(`${t.gw.prefix}:openai:wait`, 0, -1)))[0], 5000, 'the job in the wait list');
      const del = await t.gw.request('DELETE', `/v1/inference/jobs/${jobId}`);
      expect(del.body.status).toBe('CANCELED');
      const res = await sync;
      expect(res.body.error).toMatchObject({ code: 'job_canceled' });
    } finally {
      await t.gw.startWorker();
    }
  });

  it("a request in flight while the API's notice subscriber is cut off still gets its answer", async () => {
    t.fake.setLatency(300);
    try {
      const inFlight = t.gw.infer(chat('across a reconnect'));
      await t.fake.waitForRequests(1, '/chat/completions');
      // The API's notice subscriber (by its connection name); killed before the notice is
      // published, it may miss it: on reconnecting the API re-reads its waiting jobs.
      const killed = await withRedis(async (r) => {
        const list = (await r.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
        const ids = list
          .split('\n')
          .filter((line) => line.includes(' name=gw-api-notify '))
          .map((line) => /\bid=(\d+)/.exec(line)![1]);
        for (const id of ids) await r.client('KILL', 'ID', id);
        return ids.length;
      });
      expect(killed).toBeGreaterThanOrEqual(1); // ours; any other gateway on this Redis just reconnects
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(res.body.data.text).toBe('echo: across a reconnect');
    } finally {
      t.fake.setLatency(0);
    }
    expect((await t.gw.infer(chat('after reconnect'))).status).toBe(200);
  });

  async function withRedis<T>(use: (redis: IORedis) => Promise<T>): Promise<T> {
    const redis = new IORedis(REDIS_URL);
    try {
      return await use(redis);
    } finally {
      redis.disconnect();
    }
  }
});
