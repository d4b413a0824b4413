import { AnthropicFake } from '../fakes/anthropic-fake';
import { useGatewayWithFake } from '../support/gateway-harness';
import { MediaServer, tinyPng } from '../support/media-server';

/** Anthropic through the same queue, worker and response shapes as every provider. */
describe('POST /v1/inference: Anthropic', () => {
  const t = useGatewayWithFake(
    () => AnthropicFake.start(),
    (fake) => ({ ANTHROPIC_API_KEY: 'sk-ant-secret-123456', ANTHROPIC_BASE_URL: fake.baseUrl }),
    { MEDIA_ALLOW_PRIVATE_URLS: 'true', JOB_ATTEMPTS: '3' },
  );
  let media: MediaServer;
  const png = tinyPng();
  const model = 'claude-haiku-4-5';

  beforeAll(async () => {
    media = await MediaServer.start({ '/cat.png': png });
  });
  afterAll(() => media.close());

  const lastBody = (): any => t.fake.requests[t.fake.requests.length - 1].body;

  it('chat: system, temperature, stop and a default max_tokens reach the Messages API', async () => {
    const res = await t.gw.infer({
      provider: 'anthropic',
      model,
      inputs: { prompts: ['What is AI?'], system: 'Be brief.' },
      parameters: { temperature: 0.3, stop: 'END' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { text: 'echo: What is AI?', finish_reason: 'end_turn' }, provider: 'anthropic', model, cached: false });
    expect(res.body.tokens_used.total).toBe(res.body.tokens_used.prompt + res.body.tokens_used.completion);
    expect(lastBody()).toMatchObject({ model, system: 'Be brief.', temperature: 0.3, stop_sequences: ['END'], max_tokens: 4096 });
    expect(t.fake.requests[0].headers.authorization ?? t.fake.requests[0].headers['x-api-key']).toContain('sk-ant-secret-123456');
  });

  it('vision: image_url (fetched by the worker) and image_base64 become base64 image blocks', async () => {
    for (const inputs of [{ image_url: media.url('/cat.png') }, { image_base64: png.toString('base64') }]) {
      t.fake.reset();
      const res = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['Describe'], ...inputs } });
      expect(res.status).toBe(200);
      expect(res.body.data.text).toBe('echo: Describe [images: 1]');
      const image = lastBody().messages[0].content[1];
      expect(image).toEqual({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png.toString('base64') } });
    }
  });

  it('structured output: a forced tool call returned as data.parsed', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'number' } }, required: ['answer', 'score'] };
    const res = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['Rate it'] }, parameters: { schema } });
    expect(res.status).toBe(200);
    expect(res.body.data.parsed).toEqual({ answer: 'text', score: 1 });
    expect(JSON.parse(res.body.data.text)).toEqual(res.body.data.parsed);
    expect(lastBody().tool_choice).toEqual({ type: 'tool', name: 'response' });
    expect(lastBody().tools[0].input_schema).toEqual(schema);
  });

  it('529 overloaded is retried; a 400 is not', async () => {
    t.fake.failNext({ status: 529 }, 1);
    const ok = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['again'] } });
    expect(ok.status).toBe(200);
    expect(t.fake.count()).toBe(2);
    t.fake.reset();
    t.fake.failNext({ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'temperature: range' } } }, 1);
    const bad = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['x'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'provider_rejected_input' });
    expect(bad.body.error.message).toContain('temperature: range');
    expect(t.fake.count()).toBe(1);
  });

  it("429s (Anthropic's reset headers) are sat out without spending attempts", async () => {
    const reset = () => new Date(Date.now() + 100).toISOString();
    t.fake.failNext({ status: 429, headers: { 'anthropic-ratelimit-requests-remaining': '0', 'anthropic-ratelimit-requests-reset': reset() } }, 3);
    const res = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['x'] } });
    expect(res.status).toBe(200);
    expect(t.fake.count()).toBe(4);
  });

  it('a refused key is a 500 provider_auth_failed without the key', async () => {
    t.fake.failNext({ status: 401 }, 1);
    const res = await t.gw.infer({ provider: 'anthropic', model, inputs: { prompts: ['x'] } });
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('provider_auth_failed');
    expect(JSON.stringify(res.body)).not.toContain('sk-ant');
  });

  it('inputs Anthropic cannot serve are a 400 naming what chat takes', async () => {
    const res = await t.gw.infer({ provider: 'anthropic', model, inputs: { text: 'embed me' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('inputs_do_not_fit_task');
    expect(res.body.error.message).toContain('inputs.prompts');
  });
});
