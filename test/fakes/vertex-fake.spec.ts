import { helpers, protos, v1 } from '@google-cloud/aiplatform';
import { PassThroughClient } from 'google-auth-library';
import { VertexFake } from './vertex-fake';

type Value = protos.google.protobuf.IValue;
const toValue = (v: object) => helpers.toValue(v) as Value;
const fromValue = (v: Value) => helpers.fromValue(v as Parameters<typeof helpers.fromValue>[0]) as Record<string, unknown>;

const MODEL_PATH = 'projects/p1/locations/us-central1/publishers/google/models';
const EMBED = `${MODEL_PATH}/multimodalembedding@001`;
const GEMINI = `${MODEL_PATH}/gemini-2.5-flash`;

/** The SDK exactly as the adapter builds it against a base URL: HTTP fallback, no credentials. */
function clientFor(fake: VertexFake): v1.PredictionServiceClient {
  const url = new URL(fake.baseUrl);
  return new v1.PredictionServiceClient({
    apiEndpoint: url.hostname,
    port: Number(url.port),
    protocol: 'http',
    fallback: true,
    // Node's own fetch: gaxios would otherwise load node-fetch through a dynamic import(),
    // which Jest's CommonJS sandbox refuses ("invoked without --experimental-vm-modules").
    authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }),
  });
}

async function embed(client: v1.PredictionServiceClient, instance: object, parameters?: object): Promise<Record<string, unknown>> {
  const [res] = await client.predict(
    { endpoint: EMBED, instances: [toValue(instance)], ...(parameters && { parameters: toValue(parameters) }) },
    { retry: null },
  );
  return fromValue(res.predictions![0]);
}

describe('VertexFake (driven through the real @google-cloud/aiplatform SDK, HTTP fallback)', () => {
  let fake: VertexFake;
  let client: v1.PredictionServiceClient;

  beforeAll(async () => {
    fake = await VertexFake.start();
    client = clientFor(fake);
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await client.close();
    await fake.close();
  });

  it('answers predict for text: 1408-d by default, parameters.dimension otherwise, deterministic per text', async () => {
    const a = (await embed(client, { text: 'a cat' })).textEmbedding as number[];
    const again = (await embed(client, { text: 'a cat' })).textEmbedding as number[];
    const other = (await embed(client, { text: 'a dog' })).textEmbedding as number[];
    const small = (await embed(client, { text: 'a cat' }, { dimension: 256 })).textEmbedding as number[];
    expect(a).toHaveLength(1408);
    expect(again).toEqual(a);
    expect(other).not.toEqual(a);
    expect(small).toHaveLength(256);
    expect(Math.hypot(...small)).toBeCloseTo(1, 4);
  });

  it('answers predict for an image and for a video (one 1408-d segment per interval)', async () => {
    const bytes = Buffer.from('not really a png').toString('base64');
    const image = await embed(client, { image: { bytesBase64Encoded: bytes } }, { dimension: 512 });
    expect(image.imageEmbedding).toHaveLength(512);

    const video = await embed(client, { video: { bytesBase64Encoded: bytes, videoSegmentConfig: { startOffsetSec: 10, endOffsetSec: 40, intervalSec: 10 } } });
    const segments = video.videoEmbeddings as Array<{ startOffsetSec: number; endOffsetSec: number; embedding: number[] }>;
    expect(segments.map((s) => [s.startOffsetSec, s.endOffsetSec])).toEqual([
      [10, 20],
      [20, 30],
      [30, 40],
    ]);
    expect(segments.every((s) => s.embedding.length === 1408)).toBe(true);

    const byDefault = await embed(client, { video: { bytesBase64Encoded: bytes } });
    // Defaults: 0..120 s in 16 s steps.
    expect((byDefault.videoEmbeddings as unknown[]).length).toBe(8);
  });

  it('refuses what Vertex refuses: a dimension it does not offer, an interval under 4 s', async () => {
    await expect(embed(client, { text: 'x' }, { dimension: 100 })).rejects.toMatchObject({ status: 400 });
    await expect(embed(client, { video: { bytesBase64Encoded: 'AAAA', videoSegmentConfig: { intervalSec: 2 } } })).rejects.toMatchObject({
      status: 400,
    });
  });

  it('receives the model id URL-encoded, records it decoded, and sees no credentials', async () => {
    await embed(client, { text: 'x' });
    const [req] = fake.requests;
    expect(req.method).toBe('POST');
    expect(req.rawPath).toBe('/v1/projects/p1/locations/us-central1/publishers/google/models/multimodalembedding%40001:predict');
    expect(req.path).toBe(`/v1/${EMBED}:predict`);
    expect(req.query).toBe('$alt=json%3Benum-encoding=int');
    expect(req.headers.authorization).toBeUndefined();
    expect(req.headers['x-goog-api-client']).toMatch(/gax\/\S+-fallback .*rest\//);
    expect(req.body).toEqual({ instances: [{ text: 'x' }], labels: {} });
    expect(fake.count(':predict')).toBe(1);
    expect(fake.count(':generateContent')).toBe(0);
  });

  it('echoes generateContent: user text joined by newlines, images counted, usage reported', async () => {
    const [res] = await client.generateContent(
      {
        model: GEMINI,
        contents: [{ role: 'user', parts: [{ text: 'hello' }, { text: 'world' }, { inlineData: { mimeType: 'image/png', data: Buffer.from('png') } }] }],
        systemInstruction: { parts: [{ text: 'be brief' }] },
      },
      { retry: null },
    );
    const candidate = res.candidates![0];
    expect(candidate.content!.parts![0].text).toBe('echo: hello\nworld [images: 1]');
    expect(candidate.finishReason).toBe('STOP');
    expect(res.modelVersion).toBe('gemini-2.5-flash');
    const u = res.usageMetadata!;
    expect(u.promptTokenCount).toBeGreaterThan(258);
    expect(u.totalTokenCount).toBe(u.promptTokenCount! + u.candidatesTokenCount!);
    expect(fake.requests[0].path).toBe(`/v1/${GEMINI}:generateContent`);
  });

  it('answers JSON from a Vertex-dialect responseSchema (its types arrive as numbers) and from responseJsonSchema', async () => {
    const ask = async (generationConfig: protos.google.cloud.aiplatform.v1.IGenerationConfig) => {
      const [res] = await client.generateContent({ model: GEMINI, contents: [{ role: 'user', parts: [{ text: 'q' }] }], generationConfig }, { retry: null });
      return JSON.parse(res.candidates![0].content!.parts![0].text!) as unknown;
    };
    const vertexSchema = { type: 'OBJECT' as const, properties: { name: { type: 'STRING' as const }, tags: { type: 'ARRAY' as const, items: { type: 'INTEGER' as const } } } };
    expect(await ask({ responseMimeType: 'application/json', responseSchema: vertexSchema })).toEqual({ name: 'text', tags: [1] });
    const sent = (fake.requests[0].body as { generationConfig: { responseSchema: { type: unknown } } }).generationConfig.responseSchema;
    expect(sent.type).toBe(6); // OBJECT, numeric: the SDK asks for enum-encoding=int

    const jsonSchema = { type: 'object', properties: { ok: { type: 'boolean' } }, additionalProperties: false };
    expect(await ask({ responseMimeType: 'application/json', responseJsonSchema: toValue(jsonSchema) })).toEqual({ ok: true });
  });

  it('cuts the answer at maxOutputTokens and says MAX_TOKENS', async () => {
    const [res] = await client.generateContent(
      { model: GEMINI, contents: [{ role: 'user', parts: [{ text: 'a long question that needs a long answer' }] }], generationConfig: { maxOutputTokens: 2 } },
      { retry: null },
    );
    expect(res.candidates![0].finishReason).toBe('MAX_TOKENS');
    expect(res.candidates![0].content!.parts![0].text).toHaveLength(8);
  });

  it('delivers an injected 429 as one GaxiosError carrying the HTTP status (no gRPC code, no retry)', async () => {
    fake.failNext({ status: 429, headers: { 'retry-after': '3' } }, 1, ':predict');
    let error: { name?: string; status?: unknown; code?: unknown; message?: string; response?: { headers: Headers } } | undefined;
    try {
      await embed(client, { text: 'x' });
    } catch (err) {
      error = err as typeof error;
    }
    // Over the fallback, gaxios throws on the HTTP status before gax parses Google's body: the
    // error is a GaxiosError with status 429 and code 429 (an HTTP number, not gRPC's 8), its
    // message is the raw JSON body, and the response headers ride along.
    expect(error?.constructor.name).toBe('GaxiosError');
    expect(error?.status).toBe(429);
    expect(error?.code).toBe(429);
    expect(JSON.parse(error!.message!)).toEqual({ error: expect.objectContaining({ code: 429, status: 'RESOURCE_EXHAUSTED' }) });
    expect(error?.response?.headers.get('retry-after')).toBe('3');
    expect(fake.count(':predict')).toBe(1);
    // The injection was used up: the next call succeeds.
    await expect(embed(client, { text: 'x' })).resolves.toHaveProperty('textEmbedding');
  });

  it('answers Google-shaped errors for unknown routes and by default for injected statuses', async () => {
    const notFound = await fetch(`${fake.baseUrl}/v1/nope`, { method: 'POST', body: '{}' });
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ error: expect.objectContaining({ code: 404, status: 'NOT_FOUND' }) });

    fake.failNext({ status: 503 }, 2);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${fake.baseUrl}/v1/${GEMINI}:generateContent`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } });
    }
  });

  it('holds answers while hung, counts them, and lets them go on release', async () => {
    fake.hang(':generateContent');
    const pending = client.generateContent({ model: GEMINI, contents: [{ role: 'user', parts: [{ text: 'wait' }] }] }, { retry: null });
    await fake.waitForRequests(1, ':generateContent');
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    fake.release();
    const [res] = await pending;
    expect(res.candidates![0].content!.parts![0].text).toBe('echo: wait');
  });

  it('adds latency', async () => {
    fake.setLatency(80);
    const t0 = Date.now();
    await embed(client, { text: 'slow' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });
});
