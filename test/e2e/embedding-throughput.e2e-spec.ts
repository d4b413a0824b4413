import * as path from 'node:path';
import type IORedis from 'ioredis';
import { REDIS } from '@lib/queue';
import { fakeEmbedding, type RecordedRequest } from '../fakes/openai-fake';
import { useOpenAIGateway } from '../support/gateway-harness';
import { limitsFile } from '../support/limits-file';

const SMALL = 'text-embedding-3-small';

/** A limits file of the test's own, in a temp folder removed by the OS. */
const LARGE = 'text-embedding-3-large';

/** What the fake answers for a text: the vector the client must get back, number for number. */
const expected = (text: string, dims: number, model = SMALL): number[] => Array.from(fakeEmbedding(model, text, dims));

/** The `input` arrays of the embedding calls the fake received. */
function embeddingInputs(requests: RecordedRequest[]): string[][] {
  return requests.filter((r) => r.path.endsWith('/embeddings')).map((r) => {
    const input = (r.body as { input: string | string[] }).input;
    return typeof input === 'string' ? [input] : input;
  });
}

/**
 * Embedding throughput (issue #7): a large `texts` request split into provider-sized child jobs
 * and reassembled in order; concurrent single-text jobs coalesced into one provider call; the
 * exact cache paying each distinct text once; float32 results in Redis, JSON numbers to clients.
 */
describe('embedding throughput: splitting, coalescing, exact cache, compact results', () => {
  const t = useOpenAIGateway({ EMBEDDING_CACHE_TTL_SECONDS: '600', COALESCE_WINDOW_MS: '100', WORKER_CONCURRENCY: '64', SYNC_TIMEOUT_MS: '60000' });

  it('splits 5,000 texts into calls of at most 2,048 inputs and reassembles them in order', async () => {
    const texts = Array.from({ length: 5000 }, (_, i) => `split text ${i}`);
    const accepted = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { texts }, parameters: { dimensions: 8 } }, { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const view = await t.gw.pollJob(accepted.body.job_id, (v) => v.status === 'COMPLETED' || v.status === 'FAILED', 60_000);
    expect(view).toMatchObject({ status: 'COMPLETED', progress: { chunks_done: 3, chunks_total: 3 } });
    const res = { body: view.result };
    expect(res.body.data.dimensions).toBe(8);
    expect(res.body.data.embeddings).toHaveLength(5000);
    texts.forEach((text, i) => expect(res.body.data.embeddings[i]).toEqual(expected(text, 8)));
    expect(res.body.cached).toBe(false);
    // The chunks' usage added up: the fake reports ceil(characters / 4) per call.
    const chunkTokens = [texts.slice(0, 2048), texts.slice(2048, 4096), texts.slice(4096)].map((c) => Math.ceil(c.join('').length / 4));
    expect(res.body.tokens_used.total).toBe(chunkTokens.reduce((a, b) => a + b, 0));

    const calls = embeddingInputs(t.fake.requests);
    expect(calls.length).toBe(3);
    for (const input of calls) expect(input.length).toBeLessThanOrEqual(2048);
    expect(calls.flat().sort()).toEqual([...texts].sort());
  });

  it('fails a split request with the error of the chunk that failed', async () => {
    t.fake.failNext({ status: 400, body: { error: { message: 'Input too long for this model', type: 'invalid_request_error', param: 'input', code: null } } }, 1, '/embeddings');
    const texts = Array.from({ length: 2100 }, (_, i) => `failing chunk text ${i}`);
    const res = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { texts }, parameters: { dimensions: 8 } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'BadRequestError' });
    expect(res.body.error.message).toContain('Input too long for this model');
  });

  it('coalesces concurrent single-text jobs into fewer provider calls, each job getting its own vector', async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `coalesced ${i}`);
    const responses = await Promise.all(texts.map((text) => t.gw.infer({ provider: 'openai', model: SMALL, inputs: { text }, parameters: { dimensions: 8 } })));
    responses.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ embedding: expected(texts[i], 8), dimensions: 8 });
      expect(res.body.cached).toBe(false);
    });
    const calls = embeddingInputs(t.fake.requests);
    expect(calls.flat().sort()).toEqual([...texts].sort());
    expect(calls.length).toBeLessThan(texts.length);
    expect(Math.max(...calls.map((c) => c.length))).toBeGreaterThan(1);
  });

  it('pays for a text once: duplicates in a batch and across requests come from the cache', async () => {
    const first = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { texts: ['dup a', 'dup b', 'dup a'] }, parameters: { dimensions: 8 } });
    expect(first.status).toBe(200);
    expect(first.body.data.embeddings).toEqual([expected('dup a', 8), expected('dup b', 8), expected('dup a', 8)]);
    expect(first.body.cached).toBe(false);
    expect(embeddingInputs(t.fake.requests)).toEqual([['dup a', 'dup b']]);

    const again = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { texts: ['dup b', 'dup a'] }, parameters: { dimensions: 8 } });
    expect(again.status).toBe(200);
    expect(again.body.cached).toBe(true);
    expect(again.body.data.embeddings).toEqual([expected('dup b', 8), expected('dup a', 8)]);
    const single = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { text: 'dup a' }, parameters: { dimensions: 8 } });
    expect(single.body).toMatchObject({ cached: true, data: { embedding: expected('dup a', 8), dimensions: 8 } });
    expect(t.fake.count('/embeddings')).toBe(1);

    // A partial hit sends only the miss; other parameters are other entries.
    const partial = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { texts: ['dup a', 'dup c'] }, parameters: { dimensions: 8 } });
    expect(partial.body.cached).toBe(false);
    expect(partial.body.data.embeddings).toEqual([expected('dup a', 8), expected('dup c', 8)]);
    const otherDims = await t.gw.infer({ provider: 'openai', model: SMALL, inputs: { text: 'dup a' }, parameters: { dimensions: 4 } });
    expect(otherDims.body).toMatchObject({ cached: false, data: { embedding: expected('dup a', 4), dimensions: 4 } });
    expect(embeddingInputs(t.fake.requests).slice(1)).toEqual([['dup c'], ['dup a']]);
  });

  it('keeps float32 in Redis (the job return value) while the client reads JSON numbers', async () => {
    const accepted = await t.gw.infer({ provider: 'openai', model: LARGE, inputs: { text: 'compact storage' } }, { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const jobId: string = accepted.body.job_id;
    const view = await t.gw.pollJob(jobId, (v) => v.status === 'COMPLETED');
    expect(view.result.data).toEqual({ embedding: expected('compact storage', 3072, LARGE), dimensions: 3072 });

    const redis = t.gw.api!.get<IORedis>(REDIS);
    const stored = (await redis.hget(`${t.gw.prefix}:openai:${jobId}`, 'returnvalue'))!;
    const json = JSON.stringify(view.result).length;
    // 3,072 float32 = 12,288 bytes, 16,384 in base64; the same vector as JSON text is ~60 KB.
    expect(stored.length).toBeLessThan(17_000);
    expect(json).toBeGreaterThan(3 * stored.length);
    expect(JSON.parse(stored).data.embedding_f32).toEqual(expect.any(String));
  });
});

describe('coalescing under a requests-per-minute limit', () => {
  // 60 RPM, 1% headroom: one call slot about every second. The fake enforces 60 RPM itself.
  const t = useOpenAIGateway(
    {
      RATE_LIMITS_FILE: limitsFile(`providers:\n  openai:\n    headroom: 0.01\n    models:\n      ${SMALL}: { rpm: 60 }\n`),
      COALESCE_WINDOW_MS: '100',
      WORKER_CONCURRENCY: '64',
    },
    { fake: { rpm: 60 } },
  );

  it('a group passes the limiter once: deferred groups sleep without 429s and every job gets its vector', async () => {
    const done: Array<{ text: string; view: any }> = [];
    // Three waves of 20 jobs: after the first call, each wave's group must wait for a slot.
    for (let wave = 0; wave < 3; wave++) {
      const texts = Array.from({ length: 20 }, (_, i) => `limited ${wave}-${i}`);
      const accepted = await Promise.all(texts.map((text) => t.gw.infer({ provider: 'openai', model: SMALL, inputs: { text }, parameters: { dimensions: 8 } }, { prefer: 'respond-async' })));
      const views = await Promise.all(accepted.map((r) => t.gw.pollJob(r.body.job_id, (v) => v.status === 'COMPLETED' || v.status === 'FAILED', 30_000)));
      views.forEach((view, i) => done.push({ text: texts[i], view }));
    }
    for (const { text, view } of done) {
      expect(view).toMatchObject({ status: 'COMPLETED', attempts: 1 });
      expect(view.result.data.embedding).toEqual(expected(text, 8));
    }
    expect(t.fake.rateLimit.refused).toBe(0);
    const calls = embeddingInputs(t.fake.requests);
    expect(calls.flat().sort()).toEqual(done.map((d) => d.text).sort());
    // 60 jobs at 60 RPM one by one would need a minute of slots; coalesced, calls carry several
    // jobs (how many depends on how the waves arrive, so only "fewer calls than jobs" is asserted).
    expect(calls.length).toBeLessThan(done.length);
    expect(Math.max(...calls.map((c) => c.length))).toBeGreaterThan(1);
  });
});
