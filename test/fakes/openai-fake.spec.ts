import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import OpenAI, { toFile } from 'openai';
import { OpenAIFake, type MultipartBody } from './openai-fake';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Settles-or-not check without sleeping longer than needed. */
async function isSettledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

/** Raw HTTP call, to check exact wire behaviour independent of the SDK. */
function rawRequest(
  url: string,
  method: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('OpenAIFake (driven through the real openai SDK)', () => {
  let fake: OpenAIFake;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await OpenAIFake.start();
    client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0, timeout: 5000 });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await fake.close();
  });

  it('exposes a baseUrl on 127.0.0.1 with the bound port', () => {
    expect(fake.port).toBeGreaterThan(0);
    expect(fake.baseUrl).toBe(`http://127.0.0.1:${fake.port}/v1`);
  });

  describe('chat.completions', () => {
    it('echoes the last user message with a well-formed chat.completion', async () => {
      const res = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: 'hello there' },
        ],
      });
      expect(res.object).toBe('chat.completion');
      expect(res.model).toBe('gpt-4o-mini');
      expect(typeof res.id).toBe('string');
      expect(typeof res.created).toBe('number');
      expect(res.choices).toHaveLength(1);
      expect(res.choices[0]).toMatchObject({
        index: 0,
        finish_reason: 'stop',
        logprobs: null,
        message: { role: 'assistant', content: 'echo: hello there', refusal: null },
      });
      // 'be brief' + 'first' + 'ok' + 'hello there' = 8 + 5 + 2 + 11 = 26 chars -> 7 tokens
      expect(res.usage).toEqual({
        prompt_tokens: 7,
        completion_tokens: Math.ceil('echo: hello there'.length / 4),
        total_tokens: 7 + Math.ceil('echo: hello there'.length / 4),
      });
      expect(res._request_id).toMatch(/^req_/);
    });

    it('joins text parts and counts image parts', async () => {
      const res = await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
              { type: 'text', text: 'in these?' },
              { type: 'image_url', image_url: { url: 'https://example.com/x.png' } },
            ],
          },
        ],
      });
      expect(res.choices[0].message.content).toBe('echo: what is\nin these? [images: 2]');
    });

    it("reports finish_reason 'length' for tiny max_tokens / max_completion_tokens", async () => {
      const a = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
      });
      const b = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
        max_completion_tokens: 4,
      });
      const c = await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
        max_completion_tokens: 5,
      });
      expect([a, b, c].map((r) => r.choices[0].finish_reason)).toEqual(['length', 'length', 'stop']);
    });

    it('produces JSON matching a json_schema response_format that the SDK parses', async () => {
      const schema = {
        type: 'object',
        properties: {
          name: { type: 'string' },
          mood: { type: 'string', enum: ['happy', 'sad'] },
          age: { type: 'integer' },
          score: { type: 'number' },
          ok: { type: 'boolean' },
          nothing: { type: 'null' },
          maybe: { type: ['string', 'null'] },
          tags: { type: 'array', items: { type: 'string' } },
          address: {
            type: 'object',
            properties: { city: { type: 'string' }, zip: { $ref: '#/$defs/zip' } },
            required: ['city', 'zip'],
            additionalProperties: false,
          },
        },
        $defs: { zip: { type: 'integer' } },
        required: ['name', 'mood', 'age', 'score', 'ok', 'nothing', 'maybe', 'tags', 'address'],
        additionalProperties: false,
      };
      const res = await client.chat.completions.parse({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'describe a person' }],
        response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
      });
      expect(res.choices[0].message.parsed).toEqual({
        name: 'text',
        mood: 'happy',
        age: 1,
        score: 1,
        ok: true,
        nothing: null,
        maybe: 'text',
        tags: ['text'],
        address: { city: 'text', zip: 1 },
      });
      expect(JSON.parse(res.choices[0].message.content!)).toEqual(res.choices[0].message.parsed);
    });

    it('rejects stream:true and a missing model with OpenAI-shaped 400s', async () => {
      const streamErr = await client.chat.completions
        .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(streamErr).toBeInstanceOf(OpenAI.BadRequestError);
      expect((streamErr as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('stream');

      const raw = await rawRequest(
        `${fake.baseUrl}/chat/completions`,
        'POST',
        JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
        { 'content-type': 'application/json' },
      );
      expect(raw.status).toBe(400);
      expect(JSON.parse(raw.body)).toEqual({
        error: { message: 'you must provide a model parameter', type: 'invalid_request_error', param: null, code: null },
      });
    });
  });

  describe('embeddings', () => {
    it("gives identical vectors via encoding_format 'float' and the SDK's default base64 path", async () => {
      const input = ['alpha', 'beta'];
      const viaFloat = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input,
        encoding_format: 'float',
      });
      const viaBase64 = await client.embeddings.create({ model: 'text-embedding-3-small', input });

      // The SDK really asked for base64 on the default path and got strings back on the wire.
      expect(fake.requests.map((r) => (r.body as { encoding_format?: string }).encoding_format)).toEqual([
        'float',
        'base64',
      ]);

      expect(viaFloat.object).toBe('list');
      expect(viaFloat.model).toBe('text-embedding-3-small');
      expect(viaFloat.data.map((d) => [d.object, d.index])).toEqual([
        ['embedding', 0],
        ['embedding', 1],
      ]);
      for (let i = 0; i < 2; i++) {
        const f = viaFloat.data[i].embedding;
        const b = viaBase64.data[i].embedding;
        expect(f).toHaveLength(1536);
        expect(b).toHaveLength(1536);
        expect(Array.from(b)).toEqual(f);
        expect(f.every((v) => typeof v === 'number' && v >= -1 && v <= 1)).toBe(true);
      }
      expect(viaFloat.data[0].embedding).not.toEqual(viaFloat.data[1].embedding);
      expect(viaFloat.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 }); // ceil(('alpha' + 'beta').length / 4)
    });

    it('is deterministic per (model, input) and honours dimensions / large models', async () => {
      const a = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'same' });
      const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'same' });
      const otherModel = await client.embeddings.create({ model: 'text-embedding-ada-002', input: 'same' });
      const large = await client.embeddings.create({ model: 'text-embedding-3-large', input: 'same' });
      const dims = await client.embeddings.create({ model: 'text-embedding-3-large', input: 'same', dimensions: 64 });
      const dimsFloat = await client.embeddings.create({
        model: 'text-embedding-3-large',
        input: 'same',
        dimensions: 64,
        encoding_format: 'float',
      });

      expect(a.data[0].embedding).toEqual(b.data[0].embedding);
      expect(otherModel.data[0].embedding).not.toEqual(a.data[0].embedding);
      expect(large.data[0].embedding).toHaveLength(3072);
      expect(dims.data[0].embedding).toHaveLength(64);
      expect(dims.data[0].embedding).toEqual(dimsFloat.data[0].embedding);
    });

    it('sends exactly little-endian float32 bytes in base64', async () => {
      const raw = await rawRequest(
        `${fake.baseUrl}/embeddings`,
        'POST',
        JSON.stringify({ model: 'm', input: 'x', dimensions: 8, encoding_format: 'base64' }),
        { 'content-type': 'application/json' },
      );
      const rawFloat = await rawRequest(
        `${fake.baseUrl}/embeddings`,
        'POST',
        JSON.stringify({ model: 'm', input: 'x', dimensions: 8 }),
        { 'content-type': 'application/json' },
      );
      const b64 = JSON.parse(raw.body).data[0].embedding as string;
      const floats = JSON.parse(rawFloat.body).data[0].embedding as number[];
      const bytes = Buffer.from(b64, 'base64');
      expect(bytes).toHaveLength(32);
      const decoded = Array.from({ length: 8 }, (_, i) => bytes.readFloatLE(i * 4));
      expect(decoded).toEqual(floats);
    });

    it('rejects empty input with a 400 invalid_request_error on param input', async () => {
      for (const input of ['', [] as string[]]) {
        const err = await client.embeddings.create({ model: 'text-embedding-3-small', input }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(OpenAI.BadRequestError);
        const e = err as InstanceType<typeof OpenAI.BadRequestError>;
        expect(e.status).toBe(400);
        expect(e.type).toBe('invalid_request_error');
        expect(e.param).toBe('input');
        expect(e.code).toBeNull();
      }
    });
  });

  describe('audio.transcriptions', () => {
    it('returns verbose_json and json results computed from the uploaded file', async () => {
      const audio = randomBytes(32000);
      const verbose = await client.audio.transcriptions.create({
        model: 'whisper-1',
        file: await toFile(audio, 'a.mp3'),
        response_format: 'verbose_json',
        language: 'de',
      });
      const text = 'transcript of a.mp3 (32000 bytes)';
      expect(verbose).toMatchObject({ task: 'transcribe', language: 'de', duration: 2, text });
      expect(verbose.segments).toEqual([
        {
          id: 0,
          seek: 0,
          start: 0,
          end: 2,
          text,
          tokens: [],
          temperature: 0,
          avg_logprob: -0.1,
          compression_ratio: 1,
          no_speech_prob: 0,
        },
      ]);

      const json = await client.audio.transcriptions.create({
        model: 'whisper-1',
        file: await toFile(audio, 'a.mp3'),
      });
      expect(json).toEqual({
        text,
        usage: { type: 'tokens', input_tokens: 10, output_tokens: 5, total_tokens: 15 },
      });

      const body = fake.requests[0].body as MultipartBody;
      expect(body.fields).toMatchObject({ model: 'whisper-1', response_format: 'verbose_json', language: 'de' });
      expect(body.files).toEqual([
        { field: 'file', filename: 'a.mp3', contentType: expect.any(String), size: 32000, sha256: sha256(audio) },
      ]);
      expect((fake.requests[1].body as MultipartBody).fields.response_format).toBeUndefined();
    });

    it("defaults verbose_json language to 'english' and supports response_format text", async () => {
      const audio = Buffer.alloc(8000, 1);
      const verbose = await client.audio.transcriptions.create({
        model: 'whisper-1',
        file: await toFile(audio, 'clip.wav', { type: 'audio/wav' }),
        response_format: 'verbose_json',
      });
      expect(verbose.language).toBe('english');
      expect(verbose.duration).toBe(0.5);

      const text = await client.audio.transcriptions.create({
        model: 'whisper-1',
        file: await toFile(audio, 'clip.wav', { type: 'audio/wav' }),
        response_format: 'text',
      });
      expect(text).toBe('transcript of clip.wav (8000 bytes)');
      expect((fake.requests[0].body as MultipartBody).files[0].contentType).toBe('audio/wav');
    });

    it('streams a multi-megabyte upload containing boundary-like bytes and hashes it correctly', async () => {
      const audio = randomBytes(3 * 1024 * 1024);
      // Sprinkle CRLF/dash sequences that look like the start of a delimiter.
      const trap = Buffer.from('\r\n--formdata-undici-\r\n--\r\n\r\n');
      for (let off = 1000; off + trap.length < audio.length; off += 65_537) trap.copy(audio, off);
      const res = await client.audio.transcriptions.create({
        model: 'whisper-1',
        file: await toFile(audio, 'big "name".mp3'),
      });
      expect(res.text).toBe(`transcript of big "name".mp3 (${audio.length} bytes)`);
      const file = (fake.requests[0].body as MultipartBody).files[0];
      expect(file.size).toBe(audio.length);
      expect(file.sha256).toBe(sha256(audio));
    });

    it('answers 400 when there is no file part', async () => {
      const boundary = 'XyZ';
      const payload =
        `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--${boundary}--\r\n`;
      const raw = await rawRequest(`${fake.baseUrl}/audio/transcriptions`, 'POST', payload, {
        'content-type': `multipart/form-data; boundary=${boundary}`,
      });
      expect(raw.status).toBe(400);
      expect(JSON.parse(raw.body).error).toMatchObject({ type: 'invalid_request_error', param: 'file' });
      expect(fake.requests[0].body).toEqual({ fields: { model: 'whisper-1' }, files: [] });
    });
  });

  describe('models and unknown routes', () => {
    it('lists models and 404s unknown paths with an OpenAI error body', async () => {
      const models = [];
      for await (const m of client.models.list()) models.push(m.id);
      expect(models).toContain('whisper-1');

      const err = await client.get('/nope').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
        message: 'Invalid URL (GET /v1/nope)',
        type: 'invalid_request_error',
        param: null,
        code: null,
      });
    });
  });

  describe('failure injection', () => {
    it('failNext(429 with retry-after) surfaces as RateLimitError, then the next call succeeds', async () => {
      fake.failNext({ status: 429, headers: { 'retry-after': '1' } });
      const err = await client.chat.completions
        .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'a' }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      const e = err as InstanceType<typeof OpenAI.RateLimitError>;
      expect(e.status).toBe(429);
      expect(e.headers?.get('retry-after')).toBe('1');
      expect(e.code).toBe('rate_limit_exceeded');
      expect(e.type).toBe('requests');
      expect(e.message).toContain('Rate limit reached');

      const ok = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'b' }] });
      expect(ok.choices[0].message.content).toBe('echo: b');
      expect(fake.count('/chat/completions')).toBe(2);
    });

    it('queues injections in order, honours times and pathSuffix, and uses default 5xx bodies', async () => {
      fake.failNext({ status: 503 }, 2, '/embeddings');
      fake.failNext({ status: 418, body: { error: { message: 'teapot', type: 'x', param: null, code: 'tea' } } }, 1);

      // Chat does not match the first entry, so it takes the catch-all 418.
      const chatErr = await client.chat.completions
        .create({ model: 'm', messages: [{ role: 'user', content: 'x' }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((chatErr as InstanceType<typeof OpenAI.APIError>).status).toBe(418);
      expect((chatErr as InstanceType<typeof OpenAI.APIError>).code).toBe('tea');

      const statuses: Array<number | string> = [];
      for (let i = 0; i < 3; i++) {
        await client.embeddings.create({ model: 'm', input: 'x' }).then(
          () => statuses.push('ok'),
          (e: InstanceType<typeof OpenAI.APIError>) => {
            expect(e).toBeInstanceOf(OpenAI.InternalServerError);
            expect(e.error).toEqual({ message: 'The server had an error', type: 'server_error', param: null, code: null });
            statuses.push(e.status ?? 'no status');
          },
        );
      }
      expect(statuses).toEqual([503, 503, 'ok']);
    });

    it('hang() holds matching requests until release(); others are unaffected', async () => {
      fake.hang('/chat/completions');
      const pending = client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'held' }] });
      await fake.waitForRequests(1, '/chat/completions', 2000);
      expect(fake.count('/chat/completions')).toBe(1);

      // Other paths still answer while chat is held.
      const emb = await client.embeddings.create({ model: 'm', input: 'free', dimensions: 4 });
      expect(emb.data[0].embedding).toHaveLength(4);
      expect(await isSettledWithin(pending, 50)).toBe(false);

      fake.release();
      const res = await pending;
      expect(res.choices[0].message.content).toBe('echo: held');
    });

    it('applies latency to every response, and reset() restores it', async () => {
      fake.setLatency(120);
      let t0 = Date.now();
      fake.failNext({ status: 500 });
      await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.InternalServerError);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100);

      fake.reset();
      t0 = Date.now();
      await client.models.list();
      expect(Date.now() - t0).toBeLessThan(100);
    });

    it('waitForRequests rejects on timeout with a helpful message', async () => {
      await expect(fake.waitForRequests(1, '/never', 30)).rejects.toThrow(/timed out.*'\/never'.*got 0/);
    });
  });

  describe('recording', () => {
    it('records method, path, headers and parsed body of each request in order', async () => {
      await client.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'rec' }],
        temperature: 0.2,
        response_format: { type: 'json_object' },
      });
      await client.embeddings.create({ model: 'e', input: ['a', 'b'], encoding_format: 'float' });

      expect(fake.requests).toHaveLength(2);
      const [chat, emb] = fake.requests;
      expect(chat.method).toBe('POST');
      expect(chat.path).toBe('/v1/chat/completions');
      expect(chat.headers.authorization).toBe('Bearer x');
      expect(chat.headers['content-type']).toContain('application/json');
      expect(chat.body).toEqual({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'rec' }],
        temperature: 0.2,
        response_format: { type: 'json_object' },
      });
      expect(emb.path).toBe('/v1/embeddings');
      expect(emb.body).toEqual({ model: 'e', input: ['a', 'b'], encoding_format: 'float' });
      expect(fake.count()).toBe(2);
      expect(fake.count('/embeddings')).toBe(1);

      fake.reset();
      expect(fake.requests).toHaveLength(0);
      expect(fake.count()).toBe(0);
    });
  });
});

describe('OpenAIFake lifecycle', () => {
  it('with record:false keeps requests[] empty but still counts', async () => {
    const fake = await OpenAIFake.start({ record: false });
    try {
      const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0 });
      await client.embeddings.create({ model: 'm', input: 'x' });
      await client.embeddings.create({ model: 'm', input: 'y' });
      expect(fake.requests).toEqual([]);
      expect(fake.count('/embeddings')).toBe(2);
      await fake.waitForRequests(2);
    } finally {
      await fake.close();
    }
  });

  it('close() promptly tears down hanging requests and keep-alive sockets', async () => {
    const fake = await OpenAIFake.start();
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0, timeout: 10_000 });
    await client.models.list(); // leaves an idle keep-alive socket in the SDK's pool
    fake.hang();
    const pending = client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'x' }] })
      .then(
        () => 'resolved',
        (e: unknown) => e,
      );
    await fake.waitForRequests(2);
    const t0 = Date.now();
    await fake.close();
    const outcome = await pending;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(outcome).toBeInstanceOf(OpenAI.APIConnectionError);
    await fake.close(); // idempotent
  });

  it('uses the requested fixed port and start latency option', async () => {
    const probe = await OpenAIFake.start();
    const port = probe.port;
    await probe.close();
    const fake = await OpenAIFake.start({ port, latencyMs: 60 });
    try {
      expect(fake.port).toBe(port);
      const t0 = Date.now();
      const raw = await rawRequest(`${fake.baseUrl}/models`, 'GET');
      expect(raw.status).toBe(200);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
    } finally {
      await fake.close();
    }
  });
});
