import { VertexFake } from '../fakes/vertex-fake';
import { useGatewayWithFake } from '../support/gateway-harness';
import { MediaServer, tinyPng } from '../support/media-server';

/** Gemini chat and Vertex multimodal embeddings through the queue, the worker and the real SDK. */
describe('POST /v1/inference: Google (Gemini, multimodalembedding)', () => {
  const t = useGatewayWithFake(
    () => VertexFake.start(),
    (fake) => ({ GOOGLE_CLOUD_PROJECT: 'proj', GOOGLE_CLOUD_LOCATION: 'us-central1', GOOGLE_VERTEX_BASE_URL: fake.baseUrl, GOOGLE_VERTEX_AUTH: 'none' }),
    { MEDIA_ALLOW_PRIVATE_URLS: 'true', JOB_ATTEMPTS: '3' },
  );
  let media: MediaServer;
  const png = tinyPng();
  // Any bytes starting with an mp4 ftyp box: the fake does not decode video.
  const clip = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom'), Buffer.alloc(4000, 7)]);


  beforeAll(async () => {
    media = await MediaServer.start({ '/cat.png': png, '/clip.mp4': clip });
  });
  afterAll(() => media.close());

  const last = (): { path: string; body: any } => t.fake.requests[t.fake.requests.length - 1] as { path: string; body: any };
  const embed = (inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}) =>
    t.gw.infer({ provider: 'google', model: 'multimodalembedding', inputs, parameters });

  it('Gemini chat: prompts, system instruction and generation config; text, finish reason, tokens', async () => {
    const res = await t.gw.infer({
      provider: 'google',
      model: 'gemini-1.5-flash',
      inputs: { prompts: ['What is AI?'], system: 'Be brief.' },
      parameters: { temperature: 0.2, max_tokens: 300 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { text: 'echo: What is AI?' }, provider: 'google', model: 'gemini-1.5-flash' });
    expect(res.body.data.finish_reason).toBeTruthy();
    expect(res.body.tokens_used.total).toBeGreaterThan(0);
    expect(last().path).toBe('/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-1.5-flash:generateContent');
    expect(last().body).toMatchObject({
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { temperature: 0.2, maxOutputTokens: 300 },
    });
  });

  it('Gemini vision from image_url (fetched by the worker) and structured output', async () => {
    const vision = await t.gw.infer({ provider: 'google', model: 'gemini-2.0-flash', inputs: { prompts: ['Describe'], image_url: media.url('/cat.png') } });
    expect(vision.status).toBe(200);
    expect(vision.body.data.text).toBe('echo: Describe [images: 1]');
    const inline = await t.gw.infer({ provider: 'google', model: 'gemini-2.0-flash', inputs: { prompts: ['Describe'], image_base64: png.toString('base64') } });
    expect(inline.status).toBe(200);
    expect(last().body.contents[0].parts[1]).toEqual({ inlineData: { mimeType: 'image/png', data: png.toString('base64') } });
    const schema = { type: 'object', properties: { label: { type: 'string' } }, required: ['label'] };
    const structured = await t.gw.infer({ provider: 'google', model: 'gemini-2.0-flash', inputs: { prompts: ['Label it'] }, parameters: { schema } });
    expect(structured.status).toBe(200);
    expect(structured.body.data.parsed).toEqual({ label: 'text' });
  });

  it('multimodal text embedding: 1408-d by default, parameters.dimension honoured', async () => {
    const res = await embed({ text: 'machine learning' });
    expect(res.status).toBe(200);
    expect(res.body.data.dimensions).toBe(1408);
    expect(res.body.data.embedding).toHaveLength(1408);
    expect(last().path).toContain('/models/multimodalembedding@001:predict');
    const small = await embed({ text: 'machine learning' }, { dimension: 256 });
    expect(small.body.data.embedding).toHaveLength(256);
  });

  it('multimodal image embedding from image_url and from image_base64 give the same vector', async () => {
    const byUrl = await embed({ image_url: media.url('/cat.png') });
    const byBytes = await embed({ image_base64: png.toString('base64') });
    expect(byUrl.status).toBe(200);
    expect(byUrl.body.data.embedding).toEqual(byBytes.body.data.embedding);
    expect(last().body.instances[0].image.bytesBase64Encoded).toBe(png.toString('base64'));
  });

  it('video embedding: data.segments with offsets and the requested interval, from URL or base64', async () => {
    const res = await embed({ video_url: media.url('/clip.mp4') }, { start_offset_sec: 0, end_offset_sec: 32, interval_sec: 16 });
    expect(res.status).toBe(200);
    expect(res.body.data.dimensions).toBe(1408);
    expect(res.body.data.segments.map((s: any) => [s.start_offset_sec, s.end_offset_sec])).toEqual([
      [0, 16],
      [16, 32],
    ]);
    const inline = await embed({ video_base64: clip.toString('base64') }, { end_offset_sec: 16 });
    expect(inline.status).toBe(200);
    expect(inline.body.data.segments).toHaveLength(1);
  });

  it('more than 120 s of video in one request is a clear 400 and no Vertex call', async () => {
    const res = await embed({ video_base64: clip.toString('base64') }, { start_offset_sec: 0, end_offset_sec: 300 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('video_too_long');
    expect(t.fake.count()).toBe(0);
  });

  it('a 429 and a 503 are retried; a 400 is not', async () => {
    t.fake.failNext({ status: 429 }, 1);
    const ok = await embed({ text: 'again' });
    expect(ok.status).toBe(200);
    expect(t.fake.count()).toBe(2);
    t.fake.reset();
    t.fake.failNext({ status: 503 }, 1);
    const chat = await t.gw.infer({ provider: 'google', model: 'gemini-2.0-flash', inputs: { prompts: ['hi'] } });
    expect(chat.status).toBe(200);
    expect(t.fake.count()).toBe(2);
    t.fake.reset();
    t.fake.failNext({ status: 400 }, 1);
    const bad = await embed({ text: 'bad' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('provider_rejected_input');
    expect(t.fake.count()).toBe(1);
  });

  it('inputs that fit neither task are a 400 that says what the task takes', async () => {
    const res = await embed({ prompts: ['chat with an embedding model'] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('inputs_do_not_fit_task');
    expect(res.body.error.message).toContain('inputs.text or inputs.image_url');
  });
});
