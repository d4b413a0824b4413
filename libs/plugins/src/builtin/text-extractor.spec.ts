import { GatewayError } from '@lib/contracts';
import { loadConfig } from '@lib/config';
import { classifyProviderError } from '@lib/providers';
import { TeiFake } from '../../../../test/fakes/tei-fake';
import { E5_DEFAULT_TASK, e5Format, TextExtractor } from './text-extractor';

const signal = () => new AbortController().signal;
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('TextExtractor (builtin E5) against a text-embeddings server', () => {
  let tei: TeiFake;
  beforeAll(async () => {
    tei = await TeiFake.start({ maxBatch: 3 });
  });
  afterEach(() => tei.reset());
  afterAll(() => tei.close());

  const extractor = (env: Record<string, string> = {}) => new TextExtractor(loadConfig({ E5_BASE_URL: tei.baseUrl, E5_MAX_BATCH: '3', ...env }));

  it('formats queries with the instruct template and leaves passages as they are', () => {
    expect(e5Format('hi', {})).toBe('hi');
    expect(e5Format('hi', { input_type: 'passage' })).toBe('hi');
    expect(e5Format('hi', { input_type: 'query' })).toBe(`Instruct: ${E5_DEFAULT_TASK}\nQuery: hi`);
    expect(e5Format('hi', { task: 'Find the product' })).toBe('Instruct: Find the product\nQuery: hi');
  });

  it('TEI: batches texts by E5_MAX_BATCH, in order, and returns 1024-d unit vectors', async () => {
    const texts = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const out = await extractor().run({ texts }, {}, signal());
    expect(tei.requests.map((r) => (r.body as { inputs: string[] }).inputs)).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
    expect(tei.requests[0]).toMatchObject({ path: '/embed', body: { normalize: true, truncate: true } });
    const data = out.data as { embeddings: number[][]; dimensions: number };
    expect(data.dimensions).toBe(1024);
    expect(data.embeddings).toHaveLength(7);
    data.embeddings.forEach((v, i) => {
      expect(norm(v)).toBeCloseTo(1, 6);
      expect(v[0]).toBeCloseTo(tei.vectorOf(texts[i])[0], 6);
    });
    expect(out.tokensUsed).toBeUndefined();
  });

  it('L2-normalises what the server sends even when the server does not', async () => {
    tei.setScale(4);
    const out = await extractor().run({ text: 'hello' }, { input_type: 'query' }, signal());
    const data = out.data as { embedding: number[]; dimensions: number };
    expect(norm(data.embedding)).toBeCloseTo(1, 6);
    expect((tei.requests[0].body as { inputs: string[] }).inputs).toEqual([`Instruct: ${E5_DEFAULT_TASK}\nQuery: hello`]);
  });

  it('OpenAI-compatible: E5_API follows a /v1 URL, sends the model and key, reports usage', async () => {
    const out = await extractor({ E5_BASE_URL: tei.openaiBaseUrl, E5_MODEL: 'e5-large', E5_API_KEY: 'tei-key' }).run({ texts: ['a', 'b', 'c', 'd'] }, {}, signal());
    expect(tei.requests.map((r) => r.path)).toEqual(['/v1/embeddings', '/v1/embeddings']);
    expect(tei.requests[0].body).toEqual({ model: 'e5-large', input: ['a', 'b', 'c'], encoding_format: 'float' });
    expect(tei.requests[0].headers.authorization).toBe('Bearer tei-key');
    expect((out.data as { embeddings: number[][] }).embeddings).toHaveLength(4);
    expect(out.tokensUsed).toEqual({ prompt: 4, completion: 0, total: 4 });
  });

  it('server errors are classified like a provider\'s: 4xx permanent, 429/5xx and network retryable', async () => {
    tei.failNext({ status: 413, body: { error: 'batch size 9 > maximum allowed batch size 3', error_type: 'Validation' } });
    const rejected = await extractor().run({ text: 'a' }, {}, signal()).catch((e: unknown) => e);
    expect(classifyProviderError('plugin', rejected).failure).toMatchObject({
      retryable: false,
      error: { code: 'provider_rejected_input', message: expect.stringContaining('text_extractor@v1: E5 server at http://127.0.0.1') },
    });
    tei.failNext({ status: 429 });
    const busy = await extractor().run({ text: 'a' }, {}, signal()).catch((e: unknown) => e);
    expect(classifyProviderError('plugin', busy).failure).toMatchObject({ retryable: true, error: { code: 'provider_rate_limited', message: expect.stringContaining('Model is overloaded') } });
    const closed = await TeiFake.start();
    await closed.close();
    const down = await extractor({ E5_BASE_URL: closed.baseUrl }).run({ text: 'a' }, {}, signal()).catch((e: unknown) => e);
    expect(classifyProviderError('plugin', down).failure).toMatchObject({ retryable: true, error: { code: 'provider_unreachable', message: expect.stringContaining('ECONNREFUSED') } });
  });

  it('refuses vectors that are not 1024-d, and answers 503 when E5_BASE_URL is not set', async () => {
    const small = await TeiFake.start({ dimensions: 768 });
    try {
      const err = await new TextExtractor(loadConfig({ E5_BASE_URL: small.baseUrl })).run({ text: 'a' }, {}, signal()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 503, code: 'e5_server_invalid_answer', message: expect.stringContaining('returned 768-d vectors') });
    } finally {
      await small.close();
    }
    await expect(new TextExtractor(loadConfig({})).run({ text: 'a' }, {}, signal())).rejects.toMatchObject({ status: 503, code: 'plugin_not_configured' });
  });
});
