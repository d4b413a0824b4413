import { ErrorType, GatewayError, NormalizedRequest, Provider, Task } from '@lib/contracts';
import { AnthropicFake } from '../../../../test/fakes/anthropic-fake';
import { tinyPng } from '../../../../test/support/media-server';
import { AdapterContext, MediaBytes } from '../inference-adapter';
import { classifyProviderError } from '../provider-error';
import { AnthropicAdapter } from './anthropic.adapter';
import { ANTHROPIC_CHAT, ANTHROPIC_DEFAULT_MAX_TOKENS, anthropicTaskSpec } from './anthropic.tasks';

const MODEL = 'claude-haiku-4-5';

/** A context whose media are the given in-memory bytes, as the worker would hand them over. */
function contextWith(media: Record<string, MediaBytes> = {}): AdapterContext {
  return {
    signal: new AbortController().signal,
    media: {
      bytes: async (input) => media[input] ?? Promise.reject(new Error(`no media for ${input}`)),
      file: () => Promise.reject(new Error('chat reads no files')),
    },
  };
}

function chat(inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}): NormalizedRequest {
  return { provider: Provider.Anthropic, model: MODEL, task: Task.Chat, inputs, parameters };
}

async function errorOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('AnthropicAdapter (real SDK against AnthropicFake)', () => {
  let fake: AnthropicFake;
  let adapter: AnthropicAdapter;

  beforeAll(async () => {
    fake = await AnthropicFake.start();
    adapter = new AnthropicAdapter({ apiKey: 'test-key', baseUrl: fake.baseUrl, timeoutMs: 5000 });
  });

  afterEach(() => fake.reset());

  afterAll(() => fake.close());

  const sent = () => fake.requests[fake.requests.length - 1].body as Record<string, unknown>;

  it('chats with system, sampling parameters and stop sequences; reports usage', async () => {
    const result = await adapter.run(
      chat({ prompts: ['hello', 'there'], system: 'be brief' }, { temperature: 0.3, max_tokens: 64, top_k: 5, stop: 'END', metadata: { user_id: 'u1' } }),
      contextWith(),
    );
    expect(result.data).toEqual({ text: 'echo: hello\nthere', finish_reason: 'end_turn' });
    // The fake counts 4 characters a token: 18 in (system + prompts), 17 out.
    expect(result.tokensUsed).toEqual({ prompt: 5, completion: 5, total: 10 });
    expect(sent()).toEqual({
      model: MODEL,
      max_tokens: 64,
      system: 'be brief',
      temperature: 0.3,
      top_k: 5,
      stop_sequences: ['END'],
      metadata: { user_id: 'u1' },
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }, { type: 'text', text: 'there' }] }],
    });
  });

  it('sends the default max_tokens when the client gives none, and a stop list as it is', async () => {
    await adapter.run(chat({ prompts: ['hi'] }, { stop: ['a', 'b'] }), contextWith());
    expect(sent().max_tokens).toBe(ANTHROPIC_DEFAULT_MAX_TOKENS);
    expect(sent().max_tokens).toBe(4096);
    expect(sent().stop_sequences).toEqual(['a', 'b']);
    expect(sent()).not.toHaveProperty('system');
  });

  it('reports a cut-off answer with Anthropic stop_reason', async () => {
    const result = await adapter.run(chat({ prompts: ['a long question'] }, { max_tokens: 2 }), contextWith());
    expect(result.data).toEqual({ text: 'echo: a ', finish_reason: 'max_tokens' });
  });

  it('sends an image as a base64 block with its sniffed media type', async () => {
    const png = tinyPng();
    const result = await adapter.run(
      chat({ prompts: ['what is this'], image_url: 'https://example.test/a.png' }),
      contextWith({ image_url: { data: png, mime: 'image/png' } }),
    );
    expect(result.data.text).toBe('echo: what is this [images: 1]');
    const content = (sent().messages as Array<{ content: unknown[] }>)[0].content;
    expect(content[1]).toEqual({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png.toString('base64') } });
  });

  it('refuses a media type Anthropic does not take, before calling it', async () => {
    const err = await errorOf(
      adapter.run(chat({ prompts: ['what is this'], image_base64: 'Qk0=' }), contextWith({ image_base64: { data: Buffer.from('BM'), mime: 'image/bmp' } })),
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ type: ErrorType.BadRequest, status: 400, code: 'unsupported_media_type' });
    expect(err.message).toBe('inputs.image_base64 is not an image anthropic accepts (jpeg, png, gif, webp)');
    expect(fake.count()).toBe(0);
  });

  it('gets structured output through a forced tool', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer' } }, required: ['city'] };
    const result = await adapter.run(chat({ prompts: ['biggest city?'] }, { schema, schema_name: 'city', strict: true }), contextWith());
    expect(result.data).toEqual({ text: '{"city":"text","population":1}', finish_reason: 'tool_use', parsed: { city: 'text', population: 1 } });
    expect(sent().tools).toEqual([{ name: 'city', description: 'Return the answer as structured data.', input_schema: schema }]);
    expect(sent().tool_choice).toEqual({ type: 'tool', name: 'city' });
    for (const own of ['schema', 'schema_name', 'strict', 'stop']) expect(sent()).not.toHaveProperty(own);
  });

  it('names the tool "response" by default and fails a structured answer cut off by max_tokens', async () => {
    const err = await errorOf(adapter.run(chat({ prompts: ['q'] }, { schema: { type: 'object', properties: { a: { type: 'string' } } }, max_tokens: 2 }), contextWith()));
    expect(sent().tool_choice).toEqual({ type: 'tool', name: 'response' });
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'structured_output_invalid', details: { finish_reason: 'max_tokens' } });
  });

  it('lets a 529 through with its status, which the classifier retries', async () => {
    fake.failNext({ status: 529 });
    const err = await errorOf(adapter.run(chat({ prompts: ['hi'] }), contextWith()));
    expect(err.status).toBe(529);
    const { failure } = classifyProviderError(Provider.Anthropic, err);
    expect(failure.retryable).toBe(true);
    expect(failure.error).toMatchObject({ type: ErrorType.ServiceUnavailable, code: 'provider_unavailable', message: 'anthropic is unavailable (HTTP 529): Overloaded' });
  });

  it('stops waiting when the job signal aborts', async () => {
    fake.hang();
    const controller = new AbortController();
    const pending = adapter.run(chat({ prompts: ['hi'] }), { ...contextWith(), signal: controller.signal });
    await fake.waitForRequests(1);
    controller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
  });
});

describe('anthropicTaskSpec', () => {
  it('chats for every model', () => {
    expect(anthropicTaskSpec('claude-3-5-sonnet')).toBe(ANTHROPIC_CHAT);
    expect(anthropicTaskSpec('some-future-model')).toBe(ANTHROPIC_CHAT);
    expect(ANTHROPIC_CHAT.task).toBe(Task.Chat);
  });
});
