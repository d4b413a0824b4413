import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorType, GatewayError, NormalizedRequest, Provider, Task } from '@lib/contracts';
import { VertexFake } from '../../../../test/fakes/vertex-fake';
import { tinyPng } from '../../../../test/support/media-server';
import { MediaBytes, MediaSource } from '../inference-adapter';
import { classifyProviderError } from '../provider-error';
import { GoogleAdapter, toHttpLikeError, VertexError, vertexClientOptions } from './google.adapter';
import { googleTaskSpec, GOOGLE_CHAT, GOOGLE_MULTIMODAL_EMBEDDING, vertexModelId } from './google.tasks';

/** An mp4-looking clip: an `ftyp` box and filler (the fake does not decode video). */
const CLIP = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom', 'ascii'), Buffer.alloc(64, 7)]);

/** The worker's media, reduced to what the adapter asks: bytes by input name. */
function media(byInput: Record<string, MediaBytes> = {}): MediaSource {
  return {
    bytes: async (input) => {
      const got = byInput[input];
      if (!got) throw new Error(`test media has no ${input}`);
      return got;
    },
    file: async () => {
      throw new Error('the google adapter reads media as bytes');
    },
  };
}

const ctx = (m = media(), signal = new AbortController().signal) => ({ signal, media: m });

function chat(inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}, model = 'gemini-2.5-flash'): NormalizedRequest {
  return { provider: Provider.Google, model, task: Task.Chat, inputs, parameters };
}

function mmEmbed(inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}, model = 'multimodalembedding'): NormalizedRequest {
  return { provider: Provider.Google, model, task: Task.MultimodalEmbedding, inputs, parameters };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('googleTaskSpec / vertexModelId', () => {
  it('embeds with multimodalembedding*, chats with every other model', () => {
    expect(googleTaskSpec('multimodalembedding')).toBe(GOOGLE_MULTIMODAL_EMBEDDING);
    expect(googleTaskSpec('multimodalembedding@001')).toBe(GOOGLE_MULTIMODAL_EMBEDDING);
    expect(googleTaskSpec('gemini-2.5-flash')).toBe(GOOGLE_CHAT);
  });

  it('names the bare multimodalembedding by its stable version and leaves other ids alone', () => {
    expect(vertexModelId('multimodalembedding')).toBe('multimodalembedding@001');
    expect(vertexModelId('multimodalembedding@001')).toBe('multimodalembedding@001');
    expect(vertexModelId('gemini-2.5-flash')).toBe('gemini-2.5-flash');
  });
});

describe('vertexClientOptions', () => {
  it('speaks gRPC to the regional endpoint normally, REST to a base URL', () => {
    expect(vertexClientOptions({ location: 'europe-west4', vertexAuth: 'adc', timeoutMs: 1 })).toEqual({ apiEndpoint: 'europe-west4-aiplatform.googleapis.com' });
    expect(vertexClientOptions({ location: 'global', vertexAuth: 'adc', timeoutMs: 1 }).apiEndpoint).toBe('aiplatform.googleapis.com');
    const local = vertexClientOptions({ location: 'us-central1', vertexBaseUrl: 'http://127.0.0.1:8090', vertexAuth: 'none', timeoutMs: 1 });
    expect(local).toMatchObject({ apiEndpoint: '127.0.0.1', port: 8090, protocol: 'http', fallback: true });
    expect(local.authClient?.constructor.name).toBe('PassThroughClient');
  });
});

describe('toHttpLikeError', () => {
  it.each([
    [8, 429, 'RESOURCE_EXHAUSTED', true],
    [14, 503, 'UNAVAILABLE', true],
    [3, 400, 'INVALID_ARGUMENT', false],
    [16, 401, 'UNAUTHENTICATED', false],
  ])('maps gRPC code %i to HTTP %i', (code, status, reason, retryable) => {
    // grpc-js shape: the message carries "<code> <NAME>: ", `details` the server's own text.
    const grpc = Object.assign(new Error(`${code} ${reason}: what Vertex said`), { code, details: 'what Vertex said', metadata: {} });
    const err = toHttpLikeError(grpc) as VertexError;
    expect(err).toBeInstanceOf(VertexError);
    expect(err).toMatchObject({ status, code, reason, message: 'what Vertex said' });
    expect(classifyProviderError('google', err).failure.retryable).toBe(retryable);
  });

  it('reads an HTTP error whose message is Google JSON, keeps its headers and drops the request', () => {
    const body = { error: { code: 429, message: 'Quota exceeded', status: 'RESOURCE_EXHAUSTED' } };
    const gaxios = Object.assign(new Error(JSON.stringify(body)), {
      status: 429,
      code: 429,
      config: { headers: { authorization: 'Bearer ya29.secret' } },
      response: { status: 429, headers: new Headers({ 'Retry-After': '3' }) },
    });
    const err = toHttpLikeError(gaxios) as VertexError;
    expect(err).toMatchObject({ status: 429, message: 'Quota exceeded', reason: 'RESOURCE_EXHAUSTED', headers: { 'retry-after': '3' } });
    expect(JSON.stringify(err)).not.toContain('ya29');
    expect(classifyProviderError('google', err).retryAfterMs).toBe(3000);
  });

  it('turns a google.rpc.RetryInfo delay into retry-after-ms (JSON "7s" and gRPC {seconds, nanos})', () => {
    const json = { error: { code: 429, message: 'slow down', status: 'RESOURCE_EXHAUSTED', details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }] } };
    const http = toHttpLikeError(Object.assign(new Error(JSON.stringify(json)), { status: 429 }));
    expect(classifyProviderError('google', http).retryAfterMs).toBe(7000);
    const grpc = toHttpLikeError(Object.assign(new Error('8 RESOURCE_EXHAUSTED: slow down'), { code: 8, statusDetails: [{ retryDelay: { seconds: '1', nanos: 500_000_000 } }] }));
    expect(classifyProviderError('google', grpc).retryAfterMs).toBe(1500);
  });

  it('leaves alone what has no status to tell: network errors, cancels, our own errors', () => {
    const refused = Object.assign(new Error('request failed, reason: connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(toHttpLikeError(refused)).toBe(refused);
    const cancelled = Object.assign(new Error('1 CANCELLED: cancelled'), { code: 1 });
    expect(toHttpLikeError(cancelled)).toBe(cancelled);
    const ours = new GatewayError(ErrorType.BadRequest, 'no', 'x');
    expect(toHttpLikeError(ours)).toBe(ours);
    expect(classifyProviderError('google', toHttpLikeError(refused)).failure.error.code).toBe('provider_unreachable');
  });
});

describe('GoogleAdapter against VertexFake (real SDK, HTTP fallback, no credentials)', () => {
  let fake: VertexFake;
  let adapter: GoogleAdapter;

  beforeAll(async () => {
    fake = await VertexFake.start();
    adapter = new GoogleAdapter({ location: 'us-central1', vertexBaseUrl: fake.baseUrl, vertexAuth: 'none', timeoutMs: 5000 });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await adapter.close();
    await fake.close();
  });

  const lastBody = () => fake.requests[fake.requests.length - 1].body as Record<string, any>;

  describe('Gemini chat', () => {
    it('sends prompts, system instruction and generation config; answers text, finish reason and tokens', async () => {
      const out = await adapter.run(
        chat({ prompts: ['hello', 'world'], system: 'be brief' }, { temperature: 0.3, max_tokens: 100, top_p: 0.9, top_k: 20, stop: 'END' }),
        ctx(),
      );
      expect(out.data).toEqual({ text: 'echo: hello\nworld', finish_reason: 'STOP' });
      expect(out.tokensUsed).toEqual({ prompt: expect.any(Number), completion: expect.any(Number), total: expect.any(Number) });
      expect(out.tokensUsed!.total).toBe(out.tokensUsed!.prompt + out.tokensUsed!.completion);

      const req = fake.requests[0];
      expect(req.path).toBe('/v1/projects/local/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent');
      expect(req.headers['x-goog-request-params']).toBe(`model=${encodeURIComponent('projects/local/locations/us-central1/publishers/google/models/gemini-2.5-flash')}`);
      expect(req.body).toMatchObject({
        contents: [{ role: 'user', parts: [{ text: 'hello' }, { text: 'world' }] }],
        systemInstruction: { parts: [{ text: 'be brief' }] },
        generationConfig: { temperature: 0.3, maxOutputTokens: 100, topP: 0.9, topK: 20, stopSequences: ['END'] },
      });
    });

    it('passes other parameters into generationConfig in camelCase; Vertex-unknown names are dropped by the SDK', async () => {
      await adapter.run(chat({ prompts: ['x'] }, { seed: 7, presence_penalty: 0.5, not_a_vertex_field: 1 }), ctx());
      const config = lastBody().generationConfig;
      expect(config).toMatchObject({ seed: 7, presencePenalty: 0.5 });
      expect(config).not.toHaveProperty('notAVertexField');
    });

    it('sends images inline as base64 with their mime type', async () => {
      const png = tinyPng();
      const out = await adapter.run(chat({ prompts: ['what is this'], image_base64: 'ignored-by-test-media' }), ctx(media({ image_base64: { data: png, mime: 'image/png' } })));
      expect(out.data.text).toBe('echo: what is this [images: 1]');
      expect(lastBody().contents[0].parts[1]).toEqual({ inlineData: { mimeType: 'image/png', data: png.toString('base64') } });
    });

    it('asks for JSON with a JSON Schema (responseJsonSchema, untouched) and answers data.parsed', async () => {
      const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name'], additionalProperties: false };
      const out = await adapter.run(chat({ prompts: ['who'] }, { schema }), ctx());
      expect(out.data.parsed).toEqual({ name: 'text', age: 1 });
      const config = lastBody().generationConfig;
      expect(config).toMatchObject({ responseMimeType: 'application/json', responseJsonSchema: schema });
      expect(config).not.toHaveProperty('responseSchema');
    });

    it("sends a schema in Vertex's own dialect (OBJECT, STRING) as responseSchema", async () => {
      const schema = { type: 'OBJECT', properties: { city: { type: 'STRING' } } };
      const out = await adapter.run(chat({ prompts: ['where'] }, { schema }), ctx());
      expect(out.data.parsed).toEqual({ city: 'text' });
      // As the SDK encodes it: enum names become numbers (OBJECT 6, STRING 1).
      expect(lastBody().generationConfig.responseSchema).toMatchObject({ type: 6, properties: { city: { type: 1 } } });
      expect(lastBody().generationConfig).not.toHaveProperty('responseJsonSchema');
    });

    it('reports a structured answer cut at max_tokens as a 500 that says so', async () => {
      const err = await failure(adapter.run(chat({ prompts: ['who'] }, { schema: { type: 'object', properties: { name: { type: 'string' } } }, max_tokens: 1 }), ctx()));
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 500, code: 'structured_output_invalid', message: expect.stringContaining('cut off by max_tokens') });
    });

    it('turns a schema the SDK cannot encode into a 400 naming the field', async () => {
      const schema = { type: 'OBJECT', properties: { a: { type: 'STRING' } }, additionalProperties: false };
      const err = await failure(adapter.run(chat({ prompts: ['x'] }, { schema }), ctx()));
      expect(err).toMatchObject({ status: 400, message: expect.stringContaining('additionalProperties') });
      expect(classifyProviderError('google', err).failure).toMatchObject({ retryable: false, error: { code: 'provider_rejected_input' } });
      expect(fake.count()).toBe(0);
    });
  });

  describe('multimodalembedding', () => {
    it('embeds text at 1408 by default, at parameters.dimension when given, on the versioned model', async () => {
      const full = await adapter.run(mmEmbed({ text: 'a red bicycle' }), ctx());
      expect(full.data.dimensions).toBe(1408);
      expect(full.data.embedding).toHaveLength(1408);
      expect(full.tokensUsed).toBeUndefined();
      const small = await adapter.run(mmEmbed({ text: 'a red bicycle' }, { dimension: 256 }), ctx());
      expect(small.data).toEqual({ embedding: expect.any(Array), dimensions: 256 });

      expect(fake.requests[0].rawPath).toContain('multimodalembedding%40001:predict');
      expect(fake.requests[0].body).toEqual({ instances: [{ text: 'a red bicycle' }], labels: {} });
      expect(fake.requests[1].body).toMatchObject({ parameters: { dimension: 256 } });
    });

    it('embeds an image from its bytes', async () => {
      const png = tinyPng();
      const out = await adapter.run(mmEmbed({ image_url: 'https://example.test/cat.png' }, { dimension: 512 }), ctx(media({ image_url: { data: png, mime: 'image/png' } })));
      expect(out.data.dimensions).toBe(512);
      expect(lastBody().instances).toEqual([{ image: { bytesBase64Encoded: png.toString('base64') } }]);
    });

    it('embeds a video as segments, sending the window and interval as videoSegmentConfig', async () => {
      const out = await adapter.run(
        mmEmbed({ video_base64: 'x' }, { start_offset_sec: 8, end_offset_sec: 40, interval_sec: 8 }),
        ctx(media({ video_base64: { data: CLIP, mime: 'video/mp4' } })),
      );
      const segments = out.data.segments as Array<{ start_offset_sec: number; end_offset_sec: number; embedding: number[] }>;
      expect(segments.map((s) => [s.start_offset_sec, s.end_offset_sec])).toEqual([
        [8, 16],
        [16, 24],
        [24, 32],
        [32, 40],
      ]);
      expect(segments.every((s) => s.embedding.length === 1408)).toBe(true);
      expect(out.data.dimensions).toBe(1408);
      expect(lastBody().instances).toEqual([
        { video: { bytesBase64Encoded: CLIP.toString('base64'), videoSegmentConfig: { startOffsetSec: 8, endOffsetSec: 40, intervalSec: 8 } } },
      ]);
      expect(lastBody()).not.toHaveProperty('parameters');
    });

    it('refuses more than 120 s of video before downloading or calling Vertex', async () => {
      const bytes = jest.fn();
      const err = await failure(adapter.run(mmEmbed({ video_url: 'https://example.test/v.mp4' }, { start_offset_sec: 10, end_offset_sec: 200 }), ctx({ bytes, file: jest.fn() })));
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 400, code: 'video_too_long', message: expect.stringMatching(/^multimodalembedding covers at most 120 s of video per request; /) });
      expect(bytes).not.toHaveBeenCalled();
      expect(fake.count()).toBe(0);
    });

    it.each([
      [{ text: 'x' }, 300, /one of 128, 256, 512, 1408/],
      [{ video_base64: 'x' }, 512, /always 1408-d/],
    ])('refuses dimension %#: %j with %i', async (inputs, dimension, why) => {
      const err = await failure(adapter.run(mmEmbed(inputs, { dimension }), ctx(media({ video_base64: { data: CLIP, mime: 'video/mp4' } }))));
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 400, code: 'invalid_dimension', message: expect.stringMatching(why) });
      expect(fake.count()).toBe(0);
    });
  });

  describe('errors, timeout and abort', () => {
    it('delivers a 429 with status 429 and Retry-After, which the classifier retries', async () => {
      fake.failNext({ status: 429, headers: { 'retry-after': '2' } }, 1, ':predict');
      const err = await failure(adapter.run(mmEmbed({ text: 'x' }), ctx()));
      expect(err).toBeInstanceOf(VertexError);
      expect(err).toMatchObject({ status: 429, reason: 'RESOURCE_EXHAUSTED', message: expect.stringMatching(/^Resource exhausted/) });
      const classified = classifyProviderError('google', err);
      expect(classified.failure).toMatchObject({ retryable: true, error: { code: 'provider_rate_limited' } });
      expect(classified.retryAfterMs).toBe(2000);
      expect(fake.count(':predict')).toBe(1);
    });

    it('delivers a 400 as a permanent input error carrying Vertex’s message', async () => {
      fake.failNext({ status: 400, body: { error: { code: 400, message: 'Unsupported MIME type: image/x-foo', status: 'INVALID_ARGUMENT' } } });
      const err = await failure(adapter.run(chat({ prompts: ['x'] }), ctx()));
      const classified = classifyProviderError('google', err);
      expect(classified.failure).toMatchObject({ retryable: false, error: { code: 'provider_rejected_input', message: 'google rejected the request: Unsupported MIME type: image/x-foo' } });
    });

    it('gives up after timeoutMs with a retryable timeout (the HTTP fallback ignores gax deadlines)', async () => {
      const quick = new GoogleAdapter({ location: 'us-central1', vertexBaseUrl: fake.baseUrl, vertexAuth: 'none', timeoutMs: 150 });
      fake.hang(':generateContent');
      const t0 = Date.now();
      const err = await failure(quick.run(chat({ prompts: ['x'] }), ctx()));
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(classifyProviderError('google', err).failure).toMatchObject({ retryable: true, error: { code: 'provider_timeout' } });
      await quick.close();
    });

    it('cancels the call when the job is aborted', async () => {
      fake.hang(':predict');
      const abort = new AbortController();
      const running = failure(adapter.run(mmEmbed({ text: 'x' }), ctx(media(), abort.signal)));
      await fake.waitForRequests(1, ':predict');
      abort.abort('canceled');
      const err = (await running) as Error;
      expect(err.name).toBe('AbortError');
    });

    it('does not call Vertex for a job already aborted', async () => {
      const abort = new AbortController();
      abort.abort('shutdown');
      await expect(adapter.run(chat({ prompts: ['x'] }), ctx(media(), abort.signal))).rejects.toMatchObject({ name: 'AbortError' });
      expect(fake.count()).toBe(0);
    });
  });
});

describe('GoogleAdapter with Application Default Credentials (HTTP fallback)', () => {
  const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vertex-adc-'));
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails a job with provider_auth_failed while ADC cannot load, and starts over on the next job', async () => {
    // A missing key file fails inside google-auth-library, before any network.
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, 'missing.json');
    const fake = await VertexFake.start();
    const adapter = new GoogleAdapter({ project: 'p', location: 'us-central1', vertexBaseUrl: fake.baseUrl, vertexAuth: 'adc', timeoutMs: 2000 });
    try {
      const err = await failure(adapter.run(chat({ prompts: ['x'] }), ctx()));
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 500, code: 'provider_auth_failed', message: expect.stringContaining('ENOENT') });
      expect(fake.count()).toBe(0);

      // A service-account key: the SDK signs its own JWT (useJWTAccessWithScope), no token exchange.
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const key = join(dir, 'sa.json');
      writeFileSync(
        key,
        JSON.stringify({
          type: 'service_account',
          project_id: 'p',
          private_key_id: 'k1',
          private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
          client_email: 'gateway@p.iam.gserviceaccount.com',
          client_id: '1',
        }),
      );
      process.env.GOOGLE_APPLICATION_CREDENTIALS = key;
      const out = await adapter.run(chat({ prompts: ['again'] }), ctx());
      expect(out.data.text).toBe('echo: again');
      expect(fake.requests[0].headers.authorization).toMatch(/^Bearer eyJ/);
    } finally {
      await adapter.close();
      await fake.close();
    }
  });
});
