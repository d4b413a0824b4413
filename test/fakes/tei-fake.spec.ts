import OpenAI from 'openai';
import { TeiFake } from './tei-fake';

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('TeiFake (text-embeddings-inference wire protocol)', () => {
  let fake: TeiFake;

  beforeAll(async () => {
    fake = await TeiFake.start({ maxBatch: 4, maxInputChars: 50 });
  });
  afterEach(() => fake.reset());
  afterAll(() => fake.close());

  it('POST /embed answers one deterministic unit vector per input, in order', async () => {
    const res = await post(`${fake.baseUrl}/embed`, { inputs: ['a', 'b', 'a'], normalize: true });
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(3);
    expect(res.body[0]).toHaveLength(1024);
    expect(norm(res.body[0])).toBeCloseTo(1, 5);
    expect(res.body[0]).toEqual(res.body[2]);
    expect(res.body[0]).not.toEqual(res.body[1]);
    expect(res.body[1]).toEqual(fake.vectorOf('b'));
    const single = await post(`${fake.baseUrl}/embed`, { inputs: 'b' });
    expect(single.body).toEqual([fake.vectorOf('b')]);
    expect(fake.requests.map((r) => r.path)).toEqual(['/embed', '/embed']);
  });

  it('refuses a batch over max_client_batch_size (413) and long inputs without truncate (422), TEI-style', async () => {
    const big = await post(`${fake.baseUrl}/embed`, { inputs: ['1', '2', '3', '4', '5'] });
    expect(big).toEqual({ status: 413, body: { error: 'batch size 5 > maximum allowed batch size 4', error_type: 'Validation' } });
    const long = await post(`${fake.baseUrl}/embed`, { inputs: ['x'.repeat(60)] });
    expect(long.status).toBe(422);
    expect(long.body.error_type).toBe('Validation');
    expect((await post(`${fake.baseUrl}/embed`, { inputs: ['x'.repeat(60)], truncate: true })).status).toBe(200);
    expect((await post(`${fake.baseUrl}/embed`, { inputs: [] })).status).toBe(422);
  });

  it('normalize: false and setScale give vectors that are not unit length', async () => {
    const raw = await post(`${fake.baseUrl}/embed`, { inputs: ['a'], normalize: false });
    expect(norm(raw.body[0])).toBeCloseTo(2.5, 4);
    fake.setScale(3);
    const scaled = await post(`${fake.baseUrl}/embed`, { inputs: ['a'] });
    expect(norm(scaled.body[0])).toBeCloseTo(3, 4);
  });

  it('serves the OpenAI-compatible /v1/embeddings to the official SDK (float and base64)', async () => {
    const client = new OpenAI({ baseURL: fake.openaiBaseUrl, apiKey: 'x', maxRetries: 0 });
    const res = await client.embeddings.create({ model: 'e5', input: ['a', 'b'] });
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data[1].embedding).toHaveLength(1024);
    // The SDK asks for base64 and decodes float32: the values match the float answer to f32 precision.
    res.data[0].embedding.forEach((x, i) => expect(x).toBeCloseTo(fake.vectorOf('a')[i], 6));
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
    expect((fake.requests[0].body as any).encoding_format).toBe('base64');
    await expect(client.embeddings.create({ model: 'e5', input: ['1', '2', '3', '4', '5'] })).rejects.toMatchObject({ status: 413 });
  });

  it('answers injected failures with TEI error bodies', async () => {
    fake.failNext({ status: 429 });
    expect(await post(`${fake.baseUrl}/embed`, { inputs: ['a'] })).toEqual({ status: 429, body: { error: 'Model is overloaded', error_type: 'Overloaded' } });
    const info = await fetch(`${fake.baseUrl}/info`).then((r) => r.json());
    expect(info).toMatchObject({ model_id: 'intfloat/multilingual-e5-large-instruct', max_client_batch_size: 4 });
  });
});
