import * as http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import { AnthropicFake } from './anthropic-fake';

const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** Raw HTTP call, to check wire behaviour the SDK would not let us produce. */
function rawPost(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function errorOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('AnthropicFake (driven through the real @anthropic-ai/sdk)', () => {
  const MODEL = 'claude-haiku-4-5';
  let fake: AnthropicFake;
  let client: Anthropic;

  beforeAll(async () => {
    fake = await AnthropicFake.start();
    client = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'test-key', maxRetries: 0, timeout: 5000 });
  });

  afterEach(() => fake.reset());

  afterAll(() => fake.close());

  it('has a base URL without /v1, to which the SDK appends /v1/messages', async () => {
    expect(fake.baseUrl).toBe(`http://127.0.0.1:${fake.port}`);
    await client.messages.create({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/messages']);
    expect(fake.requests[0].headers['anthropic-version']).toEqual(expect.any(String));
  });

  it('echoes the last user message with a well-formed message and usage', async () => {
    const res = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      system: 'be brief',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [{ type: 'text', text: 'hello' }, { type: 'text', text: 'there' }] },
      ],
    });
    expect(res).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: MODEL,
      content: [{ type: 'text', text: 'echo: hello\nthere' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
    });
    expect(res.id).toMatch(/^msg_/);
    // 'be brief' + 'first' + 'ok' + 'hellothere' = 25 chars; 'echo: hello\nthere' = 17 chars.
    expect(res.usage).toMatchObject({ input_tokens: 7, output_tokens: 5 });
  });

  it('cuts the answer off (stop_reason max_tokens) when max_tokens is below 5', async () => {
    const res = await client.messages.create({ model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'a long question' }] });
    expect(res.stop_reason).toBe('max_tokens');
    expect(res.usage.output_tokens).toBe(2);
    expect(res.content).toEqual([{ type: 'text', text: 'echo: a ' }]);
  });

  describe('auth', () => {
    it('takes the SDK apiKey, which SDK 1.x sends as Authorization: Bearer', async () => {
      await client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
      expect(fake.requests[0].headers.authorization).toBe('Bearer test-key');
    });

    it('takes the SDK authToken as Authorization: Bearer', async () => {
      const tokenClient = new Anthropic({ baseURL: fake.baseUrl, authToken: 'tok-1', maxRetries: 0, timeout: 5000 });
      const res = await tokenClient.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
      expect(res.content).toEqual([{ type: 'text', text: 'echo: hi' }]);
      expect(fake.requests[0].headers.authorization).toBe('Bearer tok-1');
      expect(fake.requests[0].headers['x-api-key']).toBeUndefined();
    });

    it('takes x-api-key', async () => {
      const body = { model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
      const res = await rawPost(`${fake.baseUrl}/v1/messages`, body, { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' });
      expect(res.status).toBe(200);
      expect(res.body.content).toEqual([{ type: 'text', text: 'echo: hi' }]);
    });

    it('answers 401 authentication_error without credentials, 400 without anthropic-version', async () => {
      const body = { model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
      const noAuth = await rawPost(`${fake.baseUrl}/v1/messages`, body, { 'anthropic-version': '2023-06-01' });
      expect(noAuth).toEqual({ status: 401, body: { type: 'error', error: { type: 'authentication_error', message: expect.any(String) } } });
      const noVersion = await rawPost(`${fake.baseUrl}/v1/messages`, body, { 'x-api-key': 'k' });
      expect(noVersion.status).toBe(400);
      expect(noVersion.body.error.message).toMatch(/anthropic-version/);
    });
  });

  it('answers a forced tool with a tool_use block built from its input_schema', async () => {
    const res = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'a person' }],
      tools: [
        {
          name: 'person',
          input_schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] } } } },
        },
      ],
      tool_choice: { type: 'tool', name: 'person' },
    });
    expect(res.stop_reason).toBe('tool_use');
    expect(res.content).toEqual([{ type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'person', input: { name: 'text', age: 1, tags: ['a'] } }]);
  });

  it('counts base64 image blocks and refuses one without a valid media_type', async () => {
    const res = await client.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } }] }],
    });
    expect(res.content).toEqual([{ type: 'text', text: 'echo: what is this [images: 1]' }]);

    const bad = { type: 'image', source: { type: 'base64', media_type: 'image/tiff', data: PNG_BASE64 } };
    const err = await errorOf(client.messages.create({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: [bad as any] }] }));
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.error.error.message).toMatch(/media_type/);
  });

  it('refuses a request without max_tokens with a 400 invalid_request_error', async () => {
    const err = await errorOf(client.messages.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] } as any));
    expect(err.status).toBe(400);
    expect(err.error).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
  });

  it('injects failures that the SDK surfaces with their status, then answers normally', async () => {
    fake.failNext({ status: 529 });
    fake.failNext({ status: 429, headers: { 'retry-after': '3' } }, 1, '/v1/messages');
    const overloaded = await errorOf(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
    expect(overloaded.status).toBe(529);
    expect(overloaded.error.error.type).toBe('overloaded_error');
    const limited = await errorOf(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.error.error.type).toBe('rate_limit_error');
    const ok = await client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(ok.stop_reason).toBe('end_turn');
    expect(fake.count('/v1/messages')).toBe(3);
  });

  it('holds answers while hung and lets waitForRequests see the request arrive', async () => {
    fake.hang('/v1/messages');
    let settled = false;
    const pending = client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'wait' }] }).finally(() => (settled = true));
    await fake.waitForRequests(1, '/v1/messages');
    expect(settled).toBe(false);
    fake.release();
    await expect(pending).resolves.toMatchObject({ content: [{ type: 'text', text: 'echo: wait' }] });
  });

  it('answers 404 not_found_error off the messages endpoint', async () => {
    const res = await rawPost(`${fake.baseUrl}/v1/complete`, {}, { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' });
    expect(res).toEqual({ status: 404, body: { type: 'error', error: { type: 'not_found_error', message: expect.any(String) } } });
  });
});
