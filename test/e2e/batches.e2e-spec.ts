import { createHmac } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import IORedis from 'ioredis';
import { fakeEmbedding, OpenAIFake } from '../fakes/openai-fake';
import { eventually, GatewayHarness, REDIS_URL, useOpenAIGateway } from '../support/gateway-harness';
import { LocalRedisCluster, startRedisCluster } from '../support/redis-cluster';
import { QUEUE_EVENTS_MAX_LEN } from '@lib/queue';

const SECRET = 'batch-callback-secret-for-tests';
const MODEL = 'text-embedding-3-small';
const DIMS = 4;

/** An embedding line of a batch. */
const line = (customId: string, text: string) => ({ custom_id: customId, provider: 'openai', model: MODEL, inputs: { text }, parameters: { dimensions: DIMS } });
/** A chat line: never coalesced with others, so each is one provider call. */
const chatLine = (customId: string, prompt: string) => ({ custom_id: customId, provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [prompt] } });
const expectedVector = (text: string) => Array.from(fakeEmbedding(MODEL, text, DIMS));

/** A receiver for batch callbacks on loopback: it records each POST and answers with the next scripted status (then 200). */
class CallbackReceiver {
  readonly posts: Array<{ body: string; signature: string | undefined }> = [];
  readonly statuses: number[] = [];
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.posts.push({ body, signature: req.headers['x-signature'] as string | undefined });
        res.writeHead(this.statuses.shift() ?? 200).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()) ?? r());
  }
}

/** Uploads NDJSON from an async source of text chunks (the body streams; it is never one string). */
async function uploadNdjson(gw: GatewayHarness, chunks: AsyncIterable<string>, query = ''): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}/v1/inference/batches${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: chunks as unknown as RequestInit['body'],
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, body: await res.json() };
}

async function* ndjson(lines: string[], perChunk = 250): AsyncGenerator<string> {
  for (let i = 0; i < lines.length; i += perChunk) yield `${lines.slice(i, i + perChunk).join('\n')}\n`;
}

async function results(gw: GatewayHarness, id: string): Promise<{ contentType: string | null; lines: any[] }> {
  const res = await fetch(`${gw.url}/v1/inference/batches/${id}/results`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { contentType: res.headers.get('content-type'), lines: text.split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

async function waitForStatus(gw: GatewayHarness, id: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  return eventually(
    async () => {
      const res = await gw.request('GET', `/v1/inference/batches/${id}`);
      return statuses.includes(res.body.status) ? res.body : undefined;
    },
    timeoutMs,
    `batch ${id} to reach ${statuses.join('/')}`,
  );
}

describe('batches', () => {
  const t = useOpenAIGateway({ BATCH_CALLBACK_SECRET: SECRET, MEDIA_ALLOW_PRIVATE_URLS: 'true', BATCH_FEED_WINDOW: '200', BATCH_CALLBACK_ATTEMPTS: '3' });
  let receiver: CallbackReceiver;
  beforeEach(async () => {
    receiver = await new CallbackReceiver().start();
  });
  afterEach(() => receiver.close());

  it('a JSON batch: 202 with the batch, every line its own result in input order, a bad line fails alone, a signed callback once', async () => {
    const res = await t.gw.request('POST', '/v1/inference/batches', {
      requests: [line('a', 'alpha'), { custom_id: 'bad', provider: 'openai', model: MODEL }, line('b', 'beta'), { provider: 'openai', model: MODEL, inputs: { text: 'x' } }],
      callback_url: receiver.url,
      metadata: { job: 'nightly' },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/inference/batches/${res.body.batch_id}`);
    expect(res.body).toMatchObject({
      batch_id: expect.stringMatching(/^batch_[0-9a-f]{24}$/),
      object: 'batch',
      status: expect.stringMatching(/^(IN_PROGRESS|FINALIZING|COMPLETED)$/),
      request_counts: { total: 4 },
      metadata: { job: 'nightly' },
      callback_url: receiver.url,
    });
    const id = res.body.batch_id;
    const done = await waitForStatus(t.gw, id, ['COMPLETED']);
    expect(done).toMatchObject({ request_counts: { total: 4, completed: 2, failed: 2 }, progress: 100 });
    for (const field of ['created_at', 'in_progress_at', 'finished_at', 'expires_at']) expect(Date.parse(done[field])).not.toBeNaN();

    const { contentType, lines } = await results(t.gw, id);
    expect(contentType).toMatch(/^application\/x-ndjson/);
    expect(lines.map((l) => [l.index, l.custom_id])).toEqual([[0, 'a'], [1, 'bad'], [2, 'b'], [3, null]]);
    expect(lines[0].response).toMatchObject({ data: { embedding: expectedVector('alpha'), dimensions: DIMS }, provider: 'openai', model: MODEL });
    expect(lines[2].response.data.embedding).toEqual(expectedVector('beta'));
    expect(lines[1].error).toMatchObject({ code: 'invalid_request', details: { detail: [{ loc: ['body', 'inputs'], type: 'missing' }] } });
    expect(lines[1].response).toBeUndefined();
    expect(lines[3].error.code).toBe('invalid_custom_id');

    // The line's job is an ordinary job too.
    const job = await t.gw.request('GET', `/v1/inference/jobs/openai-${id}-0`);
    expect(job.body).toMatchObject({ status: 'COMPLETED', result: { data: { embedding: expectedVector('alpha') } } });

    await eventually(() => receiver.posts.length === 1, 10_000, 'the callback');
    const post = receiver.posts[0];
    expect(post.signature).toBe(`sha256=${createHmac('sha256', SECRET).update(post.body).digest('hex')}`);
    expect(JSON.parse(post.body)).toEqual(done);
    expect(receiver.posts).toHaveLength(1);
  });

  it('a 10k-line NDJSON batch with duplicates and invalid lines: every line answered once, in order; duplicates get their own results', async () => {
    const lines: string[] = [];
    const expected: Array<{ id: string; text?: string; error?: string }> = [];
    for (let i = 0; i < 10_000; i++) {
      const id = `req-${i}`;
      if (i % 997 === 5) {
        lines.push('{"custom_id": "broken", ');
        expected.push({ id: 'null', error: 'invalid_json' });
      } else if (i % 1009 === 7) {
        lines.push(JSON.stringify({ ...line(id, 'x'), provider: 'nosuch' }));
        expected.push({ id, error: 'unknown_provider' });
      } else {
        const text = `text ${i % 100}`; // 100 distinct texts, each on 100 lines
        lines.push(JSON.stringify(line(id, text)));
        expected.push({ id, text });
      }
    }
    const res = await uploadNdjson(t.gw, ndjson(lines));
    expect(res.status).toBe(202);
    expect(res.body.request_counts.total).toBe(10_000);
    const done = await waitForStatus(t.gw, res.body.batch_id, ['COMPLETED'], 120_000);
    const invalid = expected.filter((e) => e.error).length;
    expect(done.request_counts).toEqual({ total: 10_000, completed: 10_000 - invalid, failed: invalid });

    const { lines: out } = await results(t.gw, res.body.batch_id);
    expect(out).toHaveLength(10_000);
    out.forEach((l, i) => {
      expect(l.index).toBe(i);
      const e = expected[i];
      if (e.error) {
        expect(l.error.code).toBe(e.error);
        expect(String(l.custom_id)).toBe(e.id);
      } else {
        expect(l.custom_id).toBe(e.id);
        expect(l.response.data.embedding).toEqual(expectedVector(e.text!));
      }
    });

    // ~40,000 BullMQ events later, the queue's events stream (each `completed` event a copy of
    // a result) holds about QUEUE_EVENTS_MAX_LEN, not BullMQ's 10,000: every Queue the API and
    // the workers made of it (producer, batch feeder) gave the same bound.
    const redis = new IORedis(REDIS_URL);
    try {
      expect(await redis.hget(`${t.gw.prefix}:openai:meta`, 'opts.maxLenEvents')).toBe(String(QUEUE_EVENTS_MAX_LEN));
      const events = await redis.xlen(`${t.gw.prefix}:openai:events`);
      expect(events).toBeGreaterThanOrEqual(QUEUE_EVENTS_MAX_LEN);
      expect(events).toBeLessThan(QUEUE_EVENTS_MAX_LEN + 500);
    } finally {
      redis.disconnect();
    }
  }, 180_000);

  it('DELETE cancels the lines that have not started; running ones finish; every line is answered and the batch ends CANCELED', async () => {
    t.fake.hang('/embeddings');
    const lines = Array.from({ length: 2_000 }, (_, i) => JSON.stringify(line(`c-${i}`, `cancel me ${i % 10}`)));
    lines.splice(3, 0, 'not json');
    const res = await uploadNdjson(t.gw, ndjson(lines), `?callback_url=${encodeURIComponent(receiver.url)}`);
    expect(res.status).toBe(202);
    const id = res.body.batch_id;
    await t.fake.waitForRequests(1, '/embeddings');

    // While it runs, the results hold the lines finished so far (the invalid one), in order.
    const partial = await results(t.gw, id);
    expect(partial.lines).toEqual([{ custom_id: null, index: 3, error: expect.objectContaining({ code: 'invalid_json' }) }]);

    const del = await t.gw.request('DELETE', `/v1/inference/batches/${id}`);
    expect([200, 202]).toContain(del.status);
    expect(del.body.status).toBe('CANCELING'); // the hung provider calls are running
    t.fake.release();
    const ended = await waitForStatus(t.gw, id, ['CANCELED']);
    expect(ended.request_counts.total).toBe(2_001);
    expect(Date.parse(ended.cancelling_at)).not.toBeNaN();

    const { lines: out } = await results(t.gw, id);
    expect(out.map((l) => l.index)).toEqual(Array.from({ length: 2_001 }, (_, i) => i));
    const ran = out.filter((l) => l.response);
    const canceled = out.filter((l) => l.error?.code === 'batch_canceled');
    expect(ran.length).toBeGreaterThan(0);
    expect(ran.length).toBeLessThanOrEqual(200); // at most the feed window was in the queue
    expect(ran.length + canceled.length).toBe(2_000);
    expect(ended.request_counts).toEqual({ total: 2_001, completed: ran.length, failed: 2_001 - ran.length });
    expect(t.fake.count('/embeddings')).toBeLessThanOrEqual(200);

    await eventually(() => receiver.posts.length === 1, 10_000, 'the callback');
    expect(JSON.parse(receiver.posts[0].body).status).toBe('CANCELED');
    // A finished batch is not canceled again.
    expect((await t.gw.request('DELETE', `/v1/inference/batches/${id}`)).body.status).toBe('CANCELED');
  }, 120_000);

  it('the NDJSON body is read as it arrives: lines are validated and stored before the upload ends', async () => {
    let finishUpload!: () => void;
    const held = new Promise<void>((r) => (finishUpload = r));
    async function* slowly(): AsyncGenerator<string> {
      yield `${Array.from({ length: 600 }, (_, i) => JSON.stringify(line(`s-${i}`, 'streamed'))).join('\n')}\n`;
      await held;
      yield `${JSON.stringify(line('last', 'streamed'))}\n`;
    }
    const upload = uploadNdjson(t.gw, slowly());
    const redis = new IORedis(REDIS_URL);
    try {
      // The batch exists and has counted the first chunk (500 lines) while the request is still open.
      const meta = await eventually<Record<string, string> | undefined>(async () => {
        for (const id of await redis.smembers(`${t.gw.prefix}:batches:active`)) {
          const m = await redis.hgetall(`${t.gw.prefix}:batch:{${id}}:meta`);
          if (m.status === 'VALIDATING' && Number(m.total) >= 500) return m;
        }
        return undefined;
      }, 10_000, 'the first lines to be stored');
      finishUpload();
      const res = await upload;
      expect(res.body.batch_id).toBe(meta!.id);
      expect(res.body.request_counts.total).toBe(601);
      await waitForStatus(t.gw, meta!.id, ['COMPLETED']);
    } finally {
      finishUpload();
      redis.disconnect();
    }
  });

  it("a line whose own job is deleted (DELETE /v1/inference/jobs/{id}) ends with job_canceled, and the batch still ends", async () => {
    t.fake.hang('/chat/completions');
    const res = await t.gw.request('POST', '/v1/inference/batches', { requests: [chatLine('held', 'held'), ...Array.from({ length: 40 }, (_, i) => chatLine(`w${i}`, `w${i}`))] });
    const id = res.body.batch_id;
    // Worker concurrency is 32: the last lines wait in the queue.
    const jobId = `openai-${id}-40`;
    await eventually(async () => (await t.gw.request('GET', `/v1/inference/jobs/${jobId}`)).body.status === 'PENDING', 10_000, 'line 40 to wait in the queue');
    expect((await t.gw.request('DELETE', `/v1/inference/jobs/${jobId}`)).body.status).toBe('CANCELED');
    t.fake.release();
    const done = await waitForStatus(t.gw, id, ['COMPLETED'], 30_000);
    expect(done.request_counts).toEqual({ total: 41, completed: 40, failed: 1 });
    const { lines } = await results(t.gw, id);
    expect(lines[40]).toMatchObject({ index: 40, error: { code: 'job_canceled' } });
  });

  it('a cancel during the upload: the rest of the upload is read and answered batch_canceled, never run', async () => {
    t.fake.hang('/chat/completions');
    let finishUpload!: () => void;
    const held = new Promise<void>((r) => (finishUpload = r));
    async function* slowly(): AsyncGenerator<string> {
      yield `${Array.from({ length: 500 }, (_, i) => JSON.stringify(chatLine(`v-${i}`, `v ${i}`))).join('\n')}\n`;
      await held;
      yield `${Array.from({ length: 300 }, (_, i) => JSON.stringify(chatLine(`after-${i}`, `after ${i}`))).join('\n')}\n`;
    }
    const upload = uploadNdjson(t.gw, slowly());
    const redis = new IORedis(REDIS_URL);
    try {
      const id = await eventually<string | undefined>(async () => {
        for (const candidate of await redis.smembers(`${t.gw.prefix}:batches:active`)) {
          const m = await redis.hgetall(`${t.gw.prefix}:batch:{${candidate}}:meta`);
          if (m.status === 'VALIDATING' && Number(m.total) === 500) return candidate;
        }
        return undefined;
      }, 10_000, 'the first chunk to be stored') as string;
      await t.fake.waitForRequests(1, '/chat/completions'); // lines run while the upload goes on
      const cancel = t.gw.request('DELETE', `/v1/inference/batches/${id}`);
      await eventually(async () => (await redis.hget(`${t.gw.prefix}:batch:{${id}}:meta`, 'status')) === 'CANCELING', 5_000, 'CANCELING');
      finishUpload();
      const res = await upload;
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ batch_id: id, status: 'CANCELING', request_counts: { total: 800 } });
      t.fake.release();
      await cancel;
      const ended = await waitForStatus(t.gw, id, ['CANCELED']);
      const { lines: out } = await results(t.gw, id);
      expect(out).toHaveLength(800);
      expect(out.slice(500).every((l) => l.error?.code === 'batch_canceled')).toBe(true);
      const ran = out.filter((l) => l.response).length;
      expect(ran).toBeGreaterThan(0);
      expect(ended.request_counts).toEqual({ total: 800, completed: ran, failed: 800 - ran });
    } finally {
      finishUpload();
      t.fake.release();
      redis.disconnect();
    }
  });

  it('a line keeps its enable_semantic_cache and cache_delta, as a single request does', async () => {
    const res = await t.gw.request('POST', '/v1/inference/batches', { requests: [{ ...chatLine('s', 'cached?'), enable_semantic_cache: true, cache_delta: 0.05 }] });
    await waitForStatus(t.gw, res.body.batch_id, ['COMPLETED']);
    const redis = new IORedis(REDIS_URL);
    try {
      const data = JSON.parse((await redis.hget(`${t.gw.prefix}:openai:openai-${res.body.batch_id}-0`, 'data'))!);
      expect(data).toMatchObject({ semanticCache: { delta: 0.05 }, batch: { id: res.body.batch_id, index: 0, customId: 's' } });
    } finally {
      redis.disconnect();
    }
  });

  it('a callback that fails is retried with backoff until it is delivered', async () => {
    receiver.statuses.push(500, 503);
    const res = await t.gw.request('POST', '/v1/inference/batches', { requests: [line('r', 'retry')], callback_url: receiver.url });
    await waitForStatus(t.gw, res.body.batch_id, ['COMPLETED']);
    await eventually(() => receiver.posts.length === 3, 15_000, 'three callback attempts');
    const bodies = new Set(receiver.posts.map((p) => p.body));
    expect(bodies.size).toBe(1); // the same signed body each time
    expect(JSON.parse(receiver.posts[2].body)).toMatchObject({ batch_id: res.body.batch_id, status: 'COMPLETED' });
  });

  it('refuses what is not a batch: no requests list (422), no lines, too many lines, a bad callback_url; unknown ids are 404', async () => {
    const noList = await t.gw.request('POST', '/v1/inference/batches', { lines: [] });
    expect(noList.status).toBe(422);
    expect(noList.body.detail[0]).toMatchObject({ loc: ['body', 'requests'], type: 'missing' });

    const empty = await uploadNdjson(t.gw, ndjson(['', '  ']));
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatchObject({ code: 'batch_empty', details: { batch_id: expect.stringMatching(/^batch_/) } });
    expect((await waitForStatus(t.gw, empty.body.error.details.batch_id, ['FAILED'])).error.code).toBe('batch_empty');

    const strict = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl, BATCH_MAX_LINES: '3', BATCH_CALLBACK_SECRET: SECRET }, t.gw.prefix);
    await strict.startApi();
    try {
      const big = await uploadNdjson(strict, ndjson(Array.from({ length: 5 }, (_, i) => JSON.stringify(line(`m-${i}`, 'big'))), 1));
      expect(big.status).toBe(400);
      expect(big.body.error).toMatchObject({ code: 'batch_too_large', details: { max_lines: 3 } });
      const failed = await waitForStatus(t.gw, big.body.error.details.batch_id, ['FAILED']);
      expect(failed.request_counts.total).toBe(3);
      const { lines: out } = await results(t.gw, failed.batch_id);
      expect(out).toHaveLength(3); // lines already read ran or were dropped; each has an outcome
      for (const l of out) expect(l.response ?? l.error.code === 'batch_failed').toBeTruthy();

      const forbidden = await strict.request('POST', '/v1/inference/batches', { requests: [line('f', 'f')], callback_url: 'http://169.254.169.254/latest' });
      expect(forbidden.status).toBe(400);
      expect(forbidden.body.error.code).toBe('callback_url_forbidden');
    } finally {
      await strict.api!.close();
    }

    const badUrl = await t.gw.request('POST', '/v1/inference/batches', { requests: [line('f', 'f')], callback_url: 'ftp://example.com/x' });
    expect(badUrl.body.error).toMatchObject({ code: 'invalid_batch', details: { field: 'callback_url' } });
    expect((await t.gw.request('GET', '/v1/inference/batches/batch_000000000000000000000000')).body.error.code).toBe('batch_not_found');
    expect((await t.gw.request('GET', '/v1/inference/batches/nope/results')).status).toBe(404);
    // NDJSON is only a batch body.
    const wrongRoute = await t.gw.request('POST', '/v1/inference', '{"provider":"openai"}\n', { 'content-type': 'application/x-ndjson' });
    expect(wrongRoute.status).toBe(422);
  });

  it('a batch larger than QUEUE_MAX_BACKLOG goes through, filling the queue only up to the backlog; its results expire after BATCH_RETENTION_SECONDS', async () => {
    const small = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl, QUEUE_MAX_BACKLOG: '5', WORKER_CONCURRENCY: '2', BATCH_RETENTION_SECONDS: '1' });
    await small.startApi();
    await small.startWorker();
    const redis = new IORedis(REDIS_URL);
    try {
      t.fake.hang('/chat/completions');
      const res = await small.request('POST', '/v1/inference/batches', { requests: Array.from({ length: 50 }, (_, i) => chatLine(`q-${i}`, `queued ${i}`)) });
      expect(res.status).toBe(202); // the API's own backlog gate (503 queue_backlog_full) does not apply to batch lines
      const id = res.body.batch_id;
      const waiting = () => redis.llen(`${small.prefix}:openai:wait`);
      // Two lines run (held by the fake), five wait in the queue, the rest wait in the batch.
      // (The feeder trims a batch's pending lines after its addBulk has answered: wait for that too.)
      const pending = () => redis.llen(`${small.prefix}:batch:{${id}}:pending`);
      await eventually(async () => (await waiting()) === 5 && t.fake.count('/chat/completions') === 2 && (await pending()) === 43, 10_000, 'the queue to fill up to the backlog');
      await new Promise((resolve) => setTimeout(resolve, 200)); // and no further: nothing more is fed while the queue is at the backlog
      expect(await waiting()).toBe(5);
      expect(await pending()).toBe(43);
      t.fake.release();
      const done = await waitForStatus(small, id, ['COMPLETED']);
      expect(done.request_counts).toEqual({ total: 50, completed: 50, failed: 0 });
      expect(t.fake.count('/chat/completions')).toBe(50);

      const expired = await waitForStatus(small, id, ['EXPIRED'], 10_000);
      expect(Date.parse(expired.expires_at)).toBeLessThanOrEqual(Date.now());
      const gone = await small.request('GET', `/v1/inference/batches/${id}/results`);
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe('batch_expired');
    } finally {
      t.fake.release();
      redis.disconnect();
      await small.close();
    }
  });

  it('a callback host that resolves to a loopback address is refused at send time unless MEDIA_ALLOW_PRIVATE_URLS, and not retried', async () => {
    const strict = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl, BATCH_CALLBACK_SECRET: SECRET, BATCH_CALLBACK_ATTEMPTS: '3' });
    await strict.startApi();
    await strict.startWorker();
    const redis = new IORedis(REDIS_URL);
    try {
      const url = receiver.url.replace('127.0.0.1', 'localhost'); // a name: it passes at submit, its address is judged when sending
      const res = await strict.request('POST', '/v1/inference/batches', { requests: [line('l', 'local')], callback_url: url });
      expect(res.status).toBe(202);
      await waitForStatus(strict, res.body.batch_id, ['COMPLETED']);
      const job = `${strict.prefix}:batch-callbacks:callback-${res.body.batch_id}`;
      const failed = await eventually(async () => {
        const [reason, attempts] = await redis.hmget(job, 'failedReason', 'atm');
        return reason ? { reason, attempts } : undefined;
      }, 10_000, 'the callback to fail');
      expect(failed!.reason).toMatch(/resolves to a loopback address; MEDIA_ALLOW_PRIVATE_URLS=true allows it/);
      expect(failed!.attempts).toBe('1');
      expect(receiver.posts).toHaveLength(0);
    } finally {
      redis.disconnect();
      await strict.close();
    }
  });

  it('with BATCH_RESULTS_DIR, finished pages of results leave Redis for the folder, are served from there, and are deleted after the retention', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-batch-results-'));
    const disk = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl, BATCH_RESULTS_DIR: dir, BATCH_RETENTION_SECONDS: '5' });
    await disk.startApi();
    await disk.startWorker();
    const redis = new IORedis(REDIS_URL);
    try {
      t.fake.hang('/chat/completions');
      // Lines 0-999 embed at once (page 0); lines 1000-1499 are chats held by the fake (page 1).
      const lines = [
        ...Array.from({ length: 1000 }, (_, i) => JSON.stringify(line(`e${i}`, `disk ${i % 50}`))),
        ...Array.from({ length: 500 }, (_, i) => JSON.stringify(chatLine(`c${i}`, `held ${i}`))),
      ];
      const res = await uploadNdjson(disk, ndjson(lines));
      const id = res.body.batch_id;
      const meta = `${disk.prefix}:batch:{${id}}:meta`;
      await eventually(async () => (await redis.hget(meta, 'pages')) === '1', 20_000, 'page 0 to move to the folder');
      expect(fs.existsSync(path.join(dir, 'batches', id, '0.bin'))).toBe(true);
      expect(await redis.hexists(`${disk.prefix}:batch:{${id}}:results`, '0')).toBe(0);
      const running = await results(disk, id);
      expect(running.lines.map((l) => l.index)).toEqual(Array.from({ length: 1000 }, (_, i) => i)); // page 1 has nothing finished
      expect(running.lines[7].response.data.embedding).toEqual(expectedVector('disk 7'));

      t.fake.release();
      await waitForStatus(disk, id, ['COMPLETED']);
      expect(await redis.exists(`${disk.prefix}:batch:{${id}}:results`)).toBe(0);
      const { lines: out } = await results(disk, id);
      expect(out.map((l) => l.custom_id)).toEqual([...Array.from({ length: 1000 }, (_, i) => `e${i}`), ...Array.from({ length: 500 }, (_, i) => `c${i}`)]);
      expect(out[1499].response.data.text).toBe('echo: held 499');

      await waitForStatus(disk, id, ['EXPIRED'], 20_000);
      await eventually(() => !fs.existsSync(path.join(dir, 'batches', id)), 10_000, 'the pages to be deleted');
    } finally {
      t.fake.release();
      redis.disconnect();
      await disk.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a callback_url needs BATCH_CALLBACK_SECRET', async () => {
    const unsigned = new GatewayHarness({ OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: t.fake.baseUrl }, t.gw.prefix);
    await unsigned.startApi();
    try {
      const res = await unsigned.request('POST', '/v1/inference/batches', { requests: [line('u', 'u')], callback_url: receiver.url });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('callback_not_configured');
    } finally {
      await unsigned.api!.close();
    }
  });
});

/** The same machinery on a Redis Cluster: every batch key shares the batch's hash tag, so its Lua scripts run on one node. */
describe('batches on a Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let fake: OpenAIFake;
  let gw: GatewayHarness;
  let receiver: CallbackReceiver;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    fake = await OpenAIFake.start();
    receiver = await new CallbackReceiver().start();
    gw = new GatewayHarness({
      ...cluster.env(),
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: fake.baseUrl,
      WORKER_QUEUES: 'openai',
      WORKER_METRICS_PORT: '0',
      BATCH_CALLBACK_SECRET: SECRET,
      MEDIA_ALLOW_PRIVATE_URLS: 'true',
      BATCH_FEED_WINDOW: '10',
    });
    await gw.startApi();
    await gw.startWorker();
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await receiver?.close();
    await fake?.close();
    await cluster?.stop();
  });

  it('a batch is fed, recorded, finalized and called back; a second one is canceled', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify(line(`k${i}`, `cluster ${i % 7}`)));
    lines.splice(10, 0, '{"custom_id":"bad","provider":"openai","model":"text-embedding-3-small"}');
    const res = await uploadNdjson(gw, ndjson(lines, 7), `?callback_url=${encodeURIComponent(receiver.url)}`);
    expect(res.status).toBe(202);
    const done = await waitForStatus(gw, res.body.batch_id, ['COMPLETED']);
    expect(done.request_counts).toEqual({ total: 61, completed: 60, failed: 1 });
    const { lines: out } = await results(gw, res.body.batch_id);
    expect(out.map((l) => l.index)).toEqual(Array.from({ length: 61 }, (_, i) => i));
    expect(out[10].error.code).toBe('invalid_request');
    expect(out[11].response.data.embedding).toEqual(expectedVector('cluster 3'));
    await eventually(() => receiver.posts.length === 1, 10_000, 'the callback');
    expect(receiver.posts[0].signature).toBe(`sha256=${createHmac('sha256', SECRET).update(receiver.posts[0].body).digest('hex')}`);

    fake.hang('/chat/completions');
    const second = await gw.request('POST', '/v1/inference/batches', { requests: Array.from({ length: 40 }, (_, i) => chatLine(`h${i}`, `h${i}`)) });
    await fake.waitForRequests(1, '/chat/completions');
    expect((await gw.request('DELETE', `/v1/inference/batches/${second.body.batch_id}`)).body.status).toBe('CANCELING');
    fake.release();
    const canceled = await waitForStatus(gw, second.body.batch_id, ['CANCELED']);
    const { lines: rest } = await results(gw, second.body.batch_id);
    expect(rest).toHaveLength(40);
    expect(rest.filter((l) => l.error?.code === 'batch_canceled').length).toBe(canceled.request_counts.failed);
    expect(canceled.request_counts.failed).toBeGreaterThanOrEqual(30); // at most the window of 10 had been fed
  }, 120_000);
});
