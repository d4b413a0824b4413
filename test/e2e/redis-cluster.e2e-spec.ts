import { ALL_QUEUES, newJobId, QueueName } from '@lib/contracts';
import { checkRedis, QueueRegistry, REDIS, RedisClient } from '@lib/queue';
import { OpenAIFake } from '../fakes/openai-fake';
import { eventually, GatewayHarness } from '../support/gateway-harness';
import { tinyPng } from '../support/media-server';
import { LocalRedisCluster, startRedisCluster } from '../support/redis-cluster';

/**
 * The smoke suite against a real three-master Redis Cluster (REDIS_CLUSTER_NODES): every
 * connection is a cluster client, each queue lives under its own hash tag, pub/sub crosses
 * nodes, and nothing sends a multi-key command or pipeline across slots.
 */
describe('Redis Cluster: API and worker over REDIS_CLUSTER_NODES', () => {
  let cluster: LocalRedisCluster;
  let fake: OpenAIFake;
  let gw: GatewayHarness;
  const chat = (prompt: string) => ({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    fake = await OpenAIFake.start();
    gw = new GatewayHarness({
      ...cluster.env(),
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: fake.baseUrl,
      JOB_ATTEMPTS: '3',
      SYNC_TIMEOUT_MS: '30000',
      // Only the openai queue has a worker: jobs put on the others below stay where they are.
      WORKER_QUEUES: 'openai',
      WORKER_METRICS_PORT: '0',
    });
    await gw.startApi();
    await gw.startWorker();
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await fake?.close();
    await cluster?.stop();
  });

  beforeEach(() => fake.reset());

  const redis = (): RedisClient => gw.api!.get(REDIS);

  it('the start-up check reaches the cluster, reads each master, and names a bad seed list', async () => {
    const target = { redisUrl: cluster.env().REDIS_URL, redisClusterNodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })) };
    expect(await checkRedis(target)).toEqual({ warnings: [] });
    const node = cluster.node(cluster.ports[1]);
    await node.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const { warnings } = await checkRedis(target);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`"allkeys-lru" on 127.0.0.1:${cluster.ports[1]}`);
    } finally {
      await node.config('SET', 'maxmemory-policy', 'noeviction');
    }
    await expect(checkRedis({ ...target, redisClusterNodes: [{ host: '127.0.0.1', port: 9 }] }, 1000)).rejects.toThrow(
      /Cannot reach the Redis Cluster at 127\.0\.0\.1:9 .*Check REDIS_CLUSTER_NODES/,
    );
  });

  it('/health pings the cluster; /ready sees the worker heartbeat written there', async () => {
    const res = await gw.request('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', redis: 'up' });
    const ready = await eventually(async () => {
      const r = await gw.request('GET', '/ready');
      return r.status === 200 ? r : undefined;
    }, 10_000, '/ready');
    expect(ready!.body).toMatchObject({ status: 'ready', redis: 'up', workers: { openai: 1 } });
  });

  it('sync chat: the result comes back through the completion notice', async () => {
    const res = await gw.infer(chat('hello cluster'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { text: 'echo: hello cluster', finish_reason: 'stop' }, provider: 'openai', cached: false });
  });

  it('embedding: a large result is read back from the job hash (not carried in the notice)', async () => {
    const one = await gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { text: 'machine learning' } });
    expect(one.status).toBe(200);
    expect(one.body.data.embedding).toHaveLength(3072);
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
    const many = await gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { texts } });
    expect(many.status).toBe(200);
    expect(many.body.data.embeddings).toHaveLength(40);
    expect(JSON.stringify(many.body).length).toBeGreaterThan(256 * 1024);
  });

  it('async job: 202 at once, polled to COMPLETED', async () => {
    const res = await gw.infer(chat('later'), { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const view = await gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view).toMatchObject({ status: 'COMPLETED', attempts: 1, result: { data: { text: 'echo: later' } } });
  });

  it('cancel: the request published by the API reaches the worker, whatever node each is subscribed on', async () => {
    fake.hang('/chat/completions');
    const res = await gw.infer(chat('never'), { prefer: 'respond-async' });
    await fake.waitForRequests(1, '/chat/completions');
    await gw.pollJob(res.body.job_id, (v) => v.status === 'IN_PROGRESS');
    const del = await gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ status: 'CANCELED', error: { code: 'job_canceled' } });
    expect((await gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`)).body.status).toBe('CANCELED');
    expect(await redis().exists(`${gw.prefix}:canceled:${res.body.job_id}`)).toBe(1);
    fake.release();
  });

  it('a waiting job canceled with no worker running is removed and reads CANCELED', async () => {
    await gw.stopWorker(gw.workers[0]);
    try {
      const res = await gw.infer(chat('queued'), { prefer: 'respond-async' });
      const del = await gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
      expect(del.body).toMatchObject({ status: 'CANCELED', attempts: 0 });
    } finally {
      await gw.startWorker();
    }
    expect((await gw.infer(chat('after'))).status).toBe(200);
    expect(fake.requests.map((r) => (r.body as any).messages[0].content[0].text)).toEqual(['after']);
  });

  it('a large base64 input goes to a blob key of its own slot group and is deleted when the job ends', async () => {
    const image = tinyPng(100 * 1024);
    fake.hang('/chat/completions');
    const res = await gw.infer({ provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['What is it?'], image_base64: image.toString('base64') } }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const jobId = res.body.job_id as string;
    await fake.waitForRequests(1, '/chat/completions');
    const job = await gw.api!.get(QueueRegistry).get(QueueName.OpenAI).getJob(jobId);
    const ref = (job!.data as any).request.inputs.image_base64;
    expect(ref).toEqual({ $blob: `${gw.prefix}:blob:{${jobId}}:image_base64`, bytes: image.length });
    expect(await redis().exists(ref.$blob)).toBe(1);
    fake.release();
    await gw.pollJob(jobId, (v) => v.status === 'COMPLETED');
    const url = (fake.requests[0].body as any).messages[0].content[1].image_url.url as string;
    expect(Buffer.from(url.split(',')[1], 'base64').equals(image)).toBe(true);
    await eventually(async () => (await redis().exists(ref.$blob)) === 0, 5000, 'blob deletion');
  });

  it('a retry after an upstream 500 runs on the cluster and the job records two attempts', async () => {
    fake.failNext({ status: 500 }, 1);
    const sync = await gw.infer(chat('retry me'));
    expect(sync.status).toBe(200);
    expect(fake.count('/chat/completions')).toBe(2);
    fake.reset();
    fake.failNext({ status: 500 }, 1);
    const res = await gw.infer(chat('retry async'), { prefer: 'respond-async' });
    const view = await gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.attempts).toBe(2);
  });

  it("each queue's keys sit in one hash slot, and the four queues spread over at least two nodes", async () => {
    // openai has traffic from the tests above; give the other queues a job each.
    const registry = gw.api!.get(QueueRegistry);
    for (const queue of ALL_QUEUES.filter((q) => q !== QueueName.OpenAI)) {
      const jobId = newJobId(queue);
      await registry.get(queue).add(queue, { probe: true } as never, { jobId });
    }
    const nodesOf = new Map<QueueName, Set<number>>();
    for (const port of cluster.ports) {
      const node = cluster.node(port);
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${gw.prefix}:{*}:*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const queue = /^[^:]+:\{([a-z]+)\}:/.exec(key)?.[1] as QueueName;
          if (!nodesOf.has(queue)) nodesOf.set(queue, new Set());
          nodesOf.get(queue)!.add(port);
        }
      } while (cursor !== '0');
    }
    expect([...nodesOf.keys()].sort()).toEqual([...ALL_QUEUES].sort());
    for (const queue of ALL_QUEUES) {
      const slot = await cluster.node(cluster.ports[0]).cluster('KEYSLOT', `${gw.prefix}:{${queue}}:wait`);
      expect([...nodesOf.get(queue)!]).toEqual([await cluster.ownerOfSlot(slot as number)]);
    }
    const used = new Set([...nodesOf.values()].flatMap((ports) => [...ports]));
    expect(used.size).toBeGreaterThanOrEqual(2);
    // Nothing of the gateway's queues was written without a hash tag.
    for (const port of cluster.ports) {
      const untagged = (await cluster.node(port).keys(`${gw.prefix}:*`)).filter((k) => /^[^:]+:(openai|anthropic|google|plugins):/.test(k));
      expect(untagged).toEqual([]);
    }
  });
});
