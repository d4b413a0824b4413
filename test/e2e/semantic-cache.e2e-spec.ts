import { GatewayMetrics } from '@lib/metrics';
import { MIN_OBSERVATIONS } from '@lib/cache';
import { useOpenAIGateway } from '../support/gateway-harness';
import { parsePromText, sampleValue } from '../support/prom-text';

const CHAT = '/chat/completions';
const EMBED = '/embeddings';
const PROMPT = 'What is the capital of France?';

function chat(extra: Record<string, unknown> = {}, inputs: Record<string, unknown> = {}) {
  return { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [PROMPT], ...inputs }, enable_semantic_cache: true, ...extra };
}

/** enable_semantic_cache through HTTP -> queue -> worker (embedder: the OpenAI fake's embeddings, deterministic per text). */
describe('POST /v1/inference: semantic cache (vCache)', () => {
  const t = useOpenAIGateway({ SEMANTIC_CACHE_EMBEDDER: 'openai:text-embedding-3-small', SEMANTIC_CACHE_EMBED_TIMEOUT_MS: '500', WORKER_METRICS_PORT: '0' });

  async function semanticLookups(result: 'hit' | 'miss'): Promise<number> {
    const samples = parsePromText(await t.gw.workers[0].get(GatewayMetrics).metrics());
    return sampleValue(samples, 'gateway_cache_lookups_total', { kind: 'semantic', result }) ?? 0;
  }

  /** Sends `body` until an answer comes from cache; returns it with the fresh answers before it. */
  async function untilCached(body: unknown, maxRequests: number): Promise<{ hit: any; fresh: any[]; chatCallsBeforeHit: number }> {
    const fresh: any[] = [];
    for (let i = 0; i < maxRequests; i++) {
      const before = t.fake.count(CHAT);
      const res = await t.gw.infer(body);
      expect(res.status).toBe(200);
      if (res.body.cached) {
        expect(t.fake.count(CHAT)).toBe(before);
        return { hit: res.body, fresh, chatCallsBeforeHit: before };
      }
      expect(t.fake.count(CHAT)).toBe(before + 1);
      fresh.push(res.body);
      // The observation is recorded off the request path; wait for it so each request teaches the entry once.
      await new Promise((r) => setImmediate(r));
    }
    throw new Error(`no answer from cache after ${maxRequests} requests`);
  }

  it('explores a repeated prompt first, then serves it from cache with cached: true and no model call', async () => {
    const hitsBefore = await semanticLookups('hit');
    const { hit, fresh, chatCallsBeforeHit } = await untilCached(chat({ cache_delta: 0.3 }), 80);
    // The first call creates the entry; the entry needs MIN_OBSERVATIONS judged explorations before it is trusted.
    expect(fresh.length).toBeGreaterThanOrEqual(MIN_OBSERVATIONS + 1);
    expect(chatCallsBeforeHit).toBe(fresh.length);
    expect(fresh.every((r) => r.cached === false)).toBe(true);
    expect(hit).toMatchObject({ data: { text: `echo: ${PROMPT}`, finish_reason: 'stop' }, provider: 'openai', model: 'gpt-4o-mini', cached: true, tokens_used: null });
    expect(hit.data).toEqual(fresh[0].data);
    expect(typeof hit.latency_ms).toBe('number');
    expect(t.fake.count(EMBED)).toBe(fresh.length + 1);
    expect(await semanticLookups('hit')).toBe(hitsBefore + 1);
  });

  it('with cache_delta 1 a trained entry always answers; another model, system prompt or parameters is another scope: a miss', async () => {
    await untilCached(chat({ cache_delta: 0.3 }), 80);
    for (let i = 0; i < 3; i++) expect((await t.gw.infer(chat({ cache_delta: 1 }))).body.cached).toBe(true);
    const missesBefore = await semanticLookups('miss');
    const others = [
      chat({ cache_delta: 1, model: 'gpt-4o' }),
      chat({ cache_delta: 1 }, { system: 'Answer in French.' }),
      chat({ cache_delta: 1, parameters: { temperature: 0.2 } }),
      chat({ cache_delta: 1, parameters: { schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }),
    ];
    for (const body of others) {
      const before = t.fake.count(CHAT);
      const res = await t.gw.infer(body);
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(false);
      expect(t.fake.count(CHAT)).toBe(before + 1);
    }
    expect(await semanticLookups('miss')).toBe(missesBefore + others.length);
  });

  it('cache_delta 0 never serves from cache, however often the prompt was seen', async () => {
    const body = chat({ cache_delta: 0 }, { prompts: ['Name a prime number.'] });
    for (let i = 0; i < MIN_OBSERVATIONS + 6; i++) {
      const res = await t.gw.infer(body);
      expect(res.body.cached).toBe(false);
    }
    expect(t.fake.count(CHAT)).toBe(MIN_OBSERVATIONS + 6);
  });

  it('an embedder error or timeout is a miss answered fresh, not a failed or stalled request', async () => {
    await untilCached(chat({ cache_delta: 0.3 }), 80);
    t.fake.failNext({ status: 500 }, 1, EMBED);
    const failed = await t.gw.infer(chat({ cache_delta: 1 }));
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({ cached: false, data: { text: `echo: ${PROMPT}` } });

    t.fake.hang(EMBED);
    const slow = await t.gw.infer(chat({ cache_delta: 1 }));
    expect(slow.status).toBe(200);
    expect(slow.body).toMatchObject({ cached: false, data: { text: `echo: ${PROMPT}` } });
    t.fake.release();
    // The embedder is back: the trained entry answers again.
    expect((await t.gw.infer(chat({ cache_delta: 1 }))).body.cached).toBe(true);
  });

  it('requests without enable_semantic_cache never touch the cache', async () => {
    await untilCached(chat({ cache_delta: 0.3 }), 80);
    const embedsBefore = t.fake.count(EMBED);
    const res = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [PROMPT] }, cache_delta: 1 });
    expect(res.body.cached).toBe(false);
    expect(t.fake.count(EMBED)).toBe(embedsBefore);
  });

  it('cache_delta outside [0, 1] is a 422', async () => {
    for (const [delta, type] of [[1.5, 'less_than_equal'], [-0.01, 'greater_than_equal']] as const) {
      const res = await t.gw.infer(chat({ cache_delta: delta }));
      expect(res.status).toBe(422);
      expect(res.body.detail[0]).toMatchObject({ loc: ['body', 'cache_delta'], type });
    }
  });
});

describe('POST /v1/inference: semantic cache without an embedder', () => {
  const t = useOpenAIGateway({ WORKER_METRICS_PORT: '0' });

  it('enable_semantic_cache is a plain miss: answered fresh, no embedding asked for', async () => {
    for (let i = 0; i < MIN_OBSERVATIONS + 2; i++) {
      const res = await t.gw.infer(chat({ cache_delta: 1 }));
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(false);
    }
    expect(t.fake.count(EMBED)).toBe(0);
    const samples = parsePromText(await t.gw.workers[0].get(GatewayMetrics).metrics());
    expect(sampleValue(samples, 'gateway_cache_lookups_total', { kind: 'semantic', result: 'miss' })).toBe(MIN_OBSERVATIONS + 2);
  });
});
