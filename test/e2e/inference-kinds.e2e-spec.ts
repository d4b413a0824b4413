import { MultipartBody } from '../fakes/openai-fake';
import { GatewayHarness, useOpenAIGateway } from '../support/gateway-harness';
import { fakeMp3, MediaServer, tinyPng } from '../support/media-server';

/** Every OpenAI request kind of the spec, through HTTP -> Redis/BullMQ -> worker -> SDK -> fake. */
describe('POST /v1/inference: OpenAI request kinds', () => {
  const t = useOpenAIGateway({ MEDIA_ALLOW_PRIVATE_URLS: 'true' });
  let media: MediaServer;
  const png = tinyPng();
  const bigPng = tinyPng(100 * 1024);
  const mp3 = fakeMp3(200 * 1024);

  beforeAll(async () => {
    media = await MediaServer.start({ '/cat.png': png, '/talk.mp3': mp3 });
  });
  afterAll(() => media.close());

  it('chat: prompts, system, temperature and max_tokens reach OpenAI; the answer is shaped as DESIGN.md says', async () => {
    const res = await t.gw.infer({
      provider: 'openai',
      model: 'gpt-4o-mini',
      inputs: { prompts: ['What is AI?', 'Answer briefly.'], system: 'You are terse.' },
      parameters: { temperature: 0.7, max_tokens: 500 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      data: { text: 'echo: What is AI?\nAnswer briefly.', finish_reason: 'stop' },
      provider: 'openai',
      model: 'gpt-4o-mini',
      cached: false,
    });
    expect(res.body.data.parsed).toBeUndefined();
    expect(res.body.tokens_used.total).toBe(res.body.tokens_used.prompt + res.body.tokens_used.completion);
    expect(res.body.tokens_used.prompt).toBeGreaterThan(0);
    expect(typeof res.body.latency_ms).toBe('number');
    const sent = t.fake.requests[0];
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer sk-test-key');
    expect(sent.body).toMatchObject({
      model: 'gpt-4o-mini',
      temperature: 0.7,
      max_tokens: 500,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: [{ type: 'text', text: 'What is AI?' }, { type: 'text', text: 'Answer briefly.' }] },
      ],
    });
  });

  it('chat: newer reasoning models get max_completion_tokens instead of max_tokens', async () => {
    const res = await t.gw.infer({ provider: 'openai', model: 'o3-mini', inputs: { prompts: ['hi'] }, parameters: { max_tokens: 64 } });
    expect(res.status).toBe(200);
    const body = t.fake.requests[0].body as Record<string, unknown>;
    expect(body.max_completion_tokens).toBe(64);
    expect(body.max_tokens).toBeUndefined();
  });

  it('chat: parameters.schema asks for json_schema output and returns data.parsed', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer' }, capital: { type: 'boolean' } },
      required: ['city', 'population', 'capital'],
      additionalProperties: false,
    };
    const res = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['Paris?'] }, parameters: { schema } });
    expect(res.status).toBe(200);
    expect(res.body.data.parsed).toEqual({ city: 'text', population: 1, capital: true });
    expect(JSON.parse(res.body.data.text)).toEqual(res.body.data.parsed);
    expect((t.fake.requests[0].body as any).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'response', schema, strict: false },
    });
  });

  it('vision: image_url is downloaded by the worker and sent as a data URL', async () => {
    const res = await t.gw.infer({
      provider: 'openai',
      model: 'gpt-4o',
      inputs: { prompts: ['Describe this image'], image_url: media.url('/cat.png') },
      parameters: { temperature: 0.5 },
    });
    expect(res.status).toBe(200);
    expect(res.body.data.text).toBe('echo: Describe this image [images: 1]');
    expect(media.hits.get('/cat.png')).toBe(1);
    const parts = (t.fake.requests[0].body as any).messages[0].content;
    expect(parts[1]).toEqual({ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } });
  });

  it('vision: image_base64, small (kept in the job) and large (moved to a blob key) alike', async () => {
    for (const image of [png, bigPng]) {
      t.fake.reset();
      const res = await t.gw.infer({
        provider: 'openai',
        model: 'gpt-4o',
        inputs: { prompts: ['What is it?'], image_base64: image.toString('base64') },
      });
      expect(res.status).toBe(200);
      const url = (t.fake.requests[0].body as any).messages[0].content[1].image_url.url as string;
      expect(url.startsWith('data:image/png;base64,')).toBe(true);
      expect(Buffer.from(url.split(',')[1], 'base64').equals(image)).toBe(true);
    }
  });

  it('vision: bytes that are not an image are a 400 before any provider call', async () => {
    const res = await t.gw.infer({ provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['?'], image_base64: Buffer.from('plain text, not a picture').toString('base64') } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'unsupported_media_type', details: { detected: 'application/octet-stream' } });
    expect(t.fake.count()).toBe(0);
  });

  it('embedding of text: one vector with its dimensions', async () => {
    const res = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-large', inputs: { text: 'machine learning' }, parameters: {} });
    expect(res.status).toBe(200);
    expect(res.body.data.dimensions).toBe(3072);
    expect(res.body.data.embedding).toHaveLength(3072);
    expect(res.body.data.embedding.every((x: unknown) => typeof x === 'number')).toBe(true);
    expect(res.body.tokens_used).toMatchObject({ completion: 0 });
    expect((t.fake.requests[0].body as any).input).toBe('machine learning');
  });

  it('embedding of texts: vectors in input order, parameters.dimensions honoured', async () => {
    const texts = ['alpha', 'beta', 'gamma'];
    const res = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-small', inputs: { texts }, parameters: { dimensions: 256 } });
    expect(res.status).toBe(200);
    expect(res.body.data.dimensions).toBe(256);
    expect(res.body.data.embeddings).toHaveLength(3);
    // The same text embeds to the same vector, so order can be checked one text at a time.
    for (const [i, text] of texts.entries()) {
      const one = await t.gw.infer({ provider: 'openai', model: 'text-embedding-3-small', inputs: { text }, parameters: { dimensions: 256 } });
      expect(one.body.data.embedding[0]).toBeCloseTo(res.body.data.embeddings[i][0], 6);
    }
    expect((t.fake.requests[0].body as any).dimensions).toBe(256);
  });

  it('transcription of audio_url: downloaded by the worker, uploaded as multipart, verbose answer mapped', async () => {
    const res = await t.gw.infer({ provider: 'openai', model: 'whisper-1', inputs: { audio_url: media.url('/talk.mp3') }, parameters: { language: 'en' } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ text: `transcript of audio.mp3 (${mp3.length} bytes)`, language: 'en' });
    expect(res.body.data.duration).toBeCloseTo(mp3.length / 16000, 3);
    expect(res.body.data.segments).toEqual([{ start: 0, end: res.body.data.duration, text: res.body.data.text }]);
    const upload = t.fake.requests[0].body as MultipartBody;
    expect(upload.fields).toMatchObject({ model: 'whisper-1', response_format: 'verbose_json', language: 'en' });
    expect(upload.files[0]).toMatchObject({ field: 'file', filename: 'audio.mp3', size: mp3.length });
  });

  it('transcription of audio_base64 with a gpt-4o model: json answer, tokens reported', async () => {
    const res = await t.gw.infer({ provider: 'openai', model: 'gpt-4o-transcribe', inputs: { audio_base64: mp3.toString('base64') } });
    expect(res.status).toBe(200);
    expect(res.body.data.text).toBe(`transcript of audio.mp3 (${mp3.length} bytes)`);
    expect(res.body.data.segments).toEqual([]);
    expect(res.body.tokens_used).toEqual({ prompt: 10, completion: 5, total: 15 });
    expect((t.fake.requests[0].body as MultipartBody).fields.response_format).toBe('json');
  });

  it('a media URL on a private address is refused by the worker unless MEDIA_ALLOW_PRIVATE_URLS', async () => {
    const strict = new GatewayHarness({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: t.fake.baseUrl });
    await strict.startApi();
    await strict.startWorker();
    try {
      const res = await strict.infer({ provider: 'openai', model: 'whisper-1', inputs: { audio_url: media.url('/talk.mp3') } });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'BadRequestError', code: 'url_not_allowed' });
      expect(res.body.error.message).toContain('MEDIA_ALLOW_PRIVATE_URLS');
      expect(t.fake.count()).toBe(0);
    } finally {
      await strict.close();
    }
  });
});
