import { GatewayMetrics } from '@lib/metrics';
import { MIN_OBSERVATIONS } from '@lib/cache';
import { eventually, GatewayHarness, useGatewayWithFakes, useOpenAIGateway } from '../support/gateway-harness';
import { REDIS } from '@lib/queue';
import { OpenAIFake } from '../fakes/openai-fake';
import { TeiFake } from '../fakes/tei-fake';
import { AnthropicFake } from '../fakes/anthropic-fake';
import { VertexFake } from '../fakes/vertex-fake';
import { parsePromText, sampleValue } from '../support/prom-text';
import { limitsFile } from '../support/limits-file';

const CHAT = '/chat/completions';
const EMBED = '/embeddings';
const PROMPT = 'What is the capital of France?';

function chat(extra: Record<string, unknown> = {}, inputs: Record<string, unknown> = {}) {
  return { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [PROMPT], ...inputs }, enable_semantic_cache: true, ...extra };
}

/** Sends the same cache_delta 1 request `n` times: each must be answered, and none from cache. */
async function allAnsweredFresh(gw: GatewayHarness, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await gw.infer(chat({ cache_delta: 1 }));
    expect(res.status).toBe(200);
    expect(res.body.cached).toBe(false);
  }
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

/**
 * The cache's own provider calls pass the shared rate limiter, admitted now or not at all: with
 * the embedding model limited to 2 RPM (the first call is admitted, the next slot ~30 s away),
 * every later lookup is a miss answered fresh, without calling the embedder (and without
 * reserving its later slot: provider-limiter.spec.ts).
 */
describe('POST /v1/inference: semantic cache under the embedder model\'s rate limits', () => {
  const t = useOpenAIGateway({
    SEMANTIC_CACHE_EMBEDDER: 'openai:text-embedding-3-small',
    RATE_LIMITS_FILE: limitsFile('providers:\n  openai:\n    headroom: 0.01\n    models:\n      text-embedding-3-small: { rpm: 2 }\n'),
    WORKER_METRICS_PORT: '0',
  });

  it('embeds only while the limit has room: later requests are misses answered fresh at once', async () => {
    await allAnsweredFresh(t.gw, 6);
    expect(t.fake.count(EMBED)).toBe(1);
    expect(t.fake.count(CHAT)).toBe(6);
    const samples = parsePromText(await t.gw.workers[0].get(GatewayMetrics).metrics());
    expect(sampleValue(samples, 'gateway_cache_lookups_total', { kind: 'semantic', result: 'miss' })).toBe(6);
  });
});

describe('POST /v1/inference: semantic cache when the embedder answers 429', () => {
  const t = useOpenAIGateway({ SEMANTIC_CACHE_EMBEDDER: 'openai:text-embedding-3-small', WORKER_METRICS_PORT: '0' });

  it('the lookup is a miss and the model is paused for every worker for its retry-after: no embedding is asked for meanwhile', async () => {
    t.fake.failNext({ status: 429, headers: { 'retry-after': '30' }, body: { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } } }, 1, '/embeddings');
    await allAnsweredFresh(t.gw, 4);
    // The 429 was the only embedding call: the pause kept the next three lookups from asking.
    expect(t.fake.count(EMBED)).toBe(1);
    expect(t.fake.count(CHAT)).toBe(4);
    // A job of that model waits for the pause too (it is the limiter's, not the cache's).
    const redis = t.gw.workers[0].get(REDIS);
    const pauses = await redis.keys(`${t.gw.prefix}:*text-embedding-3-small:pause`);
    expect(pauses).toHaveLength(1);
    expect(await redis.pttl(pauses[0])).toBeGreaterThan(20_000);
  });
});

/**
 * The other embedders: Vertex's multimodal model (text embedding) and the builtin E5 through its
 * text-embedding server. The chat model stays the OpenAI fake's; only the prompts' vectors come
 * from the other server.
 */
describe.each([
  ['google:multimodalembedding@001', 'Vertex', ':predict'],
  ['text_extractor@v1', 'TEI (builtin E5)', '/embed'],
] as const)('POST /v1/inference: semantic cache with the %s embedder', (embedder, _server, embedPath) => {
  const t = useGatewayWithFakes(
    { openai: () => OpenAIFake.start(), vertex: () => VertexFake.start(), tei: () => TeiFake.start() },
    ({ openai, vertex, tei }) => ({
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: openai.baseUrl,
      GOOGLE_CLOUD_PROJECT: 'proj',
      GOOGLE_VERTEX_BASE_URL: vertex.baseUrl,
      GOOGLE_VERTEX_AUTH: 'none',
      E5_BASE_URL: tei.baseUrl,
    }),
    { SEMANTIC_CACHE_EMBEDDER: embedder, SEMANTIC_CACHE_EMBED_TIMEOUT_MS: '2000', WORKER_METRICS_PORT: '0' },
  );

  const embedderFake = () => (embedPath === ':predict' ? t.fakes.vertex : t.fakes.tei);

  it('embeds each prompt with it, explores, then serves the repeated prompt from cache', async () => {
    const body = chat({ cache_delta: 0.3 }, { prompts: [`${PROMPT} (${embedder})`] });
    let requests = 0;
    let hit: any;
    for (; requests < 80 && !hit; requests++) {
      const before = t.fakes.openai.count(CHAT);
      const res = await t.gw.infer(body);
      expect(res.status).toBe(200);
      if (res.body.cached) hit = res.body;
      expect(t.fakes.openai.count(CHAT)).toBe(res.body.cached ? before : before + 1);
      await new Promise((r) => setImmediate(r));
    }
    expect(hit).toMatchObject({ data: { text: `echo: ${PROMPT} (${embedder})` }, cached: true });
    expect(requests).toBeGreaterThan(MIN_OBSERVATIONS);
    // Every request's prompt went to this embedder, none to OpenAI's embeddings.
    expect(embedderFake().count(embedPath)).toBe(requests);
    expect(t.fakes.openai.count(EMBED)).toBe(0);
    const sent = embedderFake().requests[0].body as any;
    if (embedPath === ':predict') {
      expect(JSON.stringify(sent)).toContain(`${PROMPT} (${embedder})`);
    } else {
      // E5 embeds the prompt as a query with the duplicate-question instruction.
      expect(sent.inputs).toEqual([expect.stringMatching(/^Instruct: Given a question, retrieve questions that are semantically equivalent to the given question\nQuery: What is the capital of France\? \(text_extractor@v1\)$/)]);
    }
  });
});

/**
 * SEMANTIC_CACHE_JUDGE: a chat model (the Anthropic fake) decides whether an explored answer is
 * the cached one. The chat model (the OpenAI fake) is made to answer later calls in other
 * words than its first answer, which the default exact comparison calls different.
 */
describe('POST /v1/inference: semantic cache with a model as judge', () => {
  const t = useGatewayWithFakes(
    { openai: () => OpenAIFake.start(), anthropic: () => AnthropicFake.start() },
    ({ openai, anthropic }) => ({
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: openai.baseUrl,
      ANTHROPIC_API_KEY: 'sk-ant-test',
      ANTHROPIC_BASE_URL: anthropic.baseUrl,
    }),
    { SEMANTIC_CACHE_EMBEDDER: 'openai:text-embedding-3-small', SEMANTIC_CACHE_JUDGE: 'anthropic:claude-judge', WORKER_METRICS_PORT: '0' },
  );
  const QUESTION = 'Which city is the capital of France?';
  const completion = (content: string) => ({
    status: 200,
    body: {
      id: 'chatcmpl-judged',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 },
    },
  });
  const verdict = (text: string) => ({
    status: 200,
    body: { id: 'msg_judge', type: 'message', role: 'assistant', model: 'claude-judge', content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 30, output_tokens: 1 } },
  });

  /** A worker's view of a scope may be 25 ms stale (SYNC_INTERVAL_MS): past that, it has every stored entry. */
  const settled = () => new Promise((r) => setTimeout(r, 100));

  /** Entries stored in every semantic cache scope of this gateway. */
  async function entries(): Promise<number> {
    const redis = t.gw.workers[0].get(REDIS);
    let n = 0;
    for (const key of await redis.keys(`${t.gw.prefix}:sc:*:ans`)) n += await redis.hlen(key);
    return n;
  }

  it('a YES from the judge counts a differently worded answer as right: the first answer is the one served from cache', async () => {
    const body = chat({ cache_delta: 0.3 }, { prompts: [QUESTION] });
    const first = await t.gw.infer(body);
    expect(first.body).toMatchObject({ cached: false, data: { text: `echo: ${QUESTION}` } });
    // The entry is stored off the request path: the next request must find it.
    await eventually(async () => (await entries()) === 1, 5_000, 'the first entry');
    await settled();
    t.fakes.openai.failNext(completion('Paris is the capital of France.') as any, 100, '/chat/completions');
    t.fakes.anthropic.failNext(verdict('YES') as any, 100, '/v1/messages');
    let hit: any;
    let requests = 0;
    for (; requests < 80 && !hit; requests++) {
      const res = await t.gw.infer(body);
      expect(res.status).toBe(200);
      if (res.body.cached) hit = res.body;
      else expect(res.body.data.text).toBe('Paris is the capital of France.');
      // The judge runs off the request path: let it finish before the next request.
      await t.fakes.anthropic.waitForRequests(requests + (res.body.cached ? 0 : 1), '/v1/messages', 5_000);
    }
    // Judged the same, the reworded answers taught the first entry instead of becoming entries of their own.
    expect(hit).toMatchObject({ cached: true, data: { text: `echo: ${QUESTION}` } });
    expect(t.fakes.anthropic.count('/v1/messages')).toBe(requests - 1);
    expect(requests - 1).toBeGreaterThanOrEqual(MIN_OBSERVATIONS);
    const asked = JSON.stringify(t.fakes.anthropic.requests[0].body);
    for (const part of [QUESTION, `echo: ${QUESTION}`, 'Paris is the capital of France.', 'Reply with one word: YES']) expect(asked).toContain(part);
  });

  it('a NO from the judge keeps the entry from answering: every request is answered fresh and judged', async () => {
    const question = 'Which river flows through Paris?';
    const body = chat({ cache_delta: 0.3 }, { prompts: [question] });
    const stored = await entries();
    expect((await t.gw.infer(body)).body.data.text).toBe(`echo: ${question}`);
    await eventually(async () => (await entries()) === stored + 1, 5_000, 'the first entry');
    await settled();
    const judgedBefore = t.fakes.anthropic.count('/v1/messages'); // the new prompt was compared with the first test's entry
    t.fakes.openai.failNext(completion('The Seine.') as any, 100, '/chat/completions');
    t.fakes.anthropic.failNext(verdict('NO') as any, 100, '/v1/messages');
    const rounds = MIN_OBSERVATIONS * 3;
    for (let i = 0; i < rounds; i++) {
      const res = await t.gw.infer(body);
      expect(res.body).toMatchObject({ cached: false, data: { text: 'The Seine.' } });
      await t.fakes.anthropic.waitForRequests(judgedBefore + i + 1, '/v1/messages', 5_000);
    }
    // A wrong answer seen at similarity 1 means the entry never answers a prompt this close again
    // (the reworded answer makes no entry of its own: its vector is the same).
    expect(t.fakes.anthropic.count('/v1/messages') - judgedBefore).toBe(rounds);
  });
});
