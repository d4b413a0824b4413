import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import OpenAI from 'openai';
import { createNodeHttpFetch } from './node-http-fetch';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP server; `handler` answers each request after it has been read whole. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const closed: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
    res.on('close', () => {
      if (!res.writableFinished) closed.push(req.url!);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    seen,
    closed,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('createNodeHttpFetch (node:http under the SDKs)', () => {
  const nodeFetch = createNodeHttpFetch();

  it('sends method, headers and a string body; answers status, headers and body as fetch does', async () => {
    const s = await serve((_req, res, body) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'req_1' });
      res.end(JSON.stringify({ echo: JSON.parse(body) }));
    });
    try {
      const res = await nodeFetch(`${s.base}/v1/chat?x=1`, {
        method: 'POST',
        headers: new Headers({ 'content-type': 'application/json', authorization: 'Bearer k' }),
        body: JSON.stringify({ a: 1 }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-request-id')).toBe('req_1');
      expect(await res.json()).toEqual({ echo: { a: 1 } });
      expect(s.seen[0]).toMatchObject({ method: 'POST', url: '/v1/chat?x=1', body: '{"a":1}' });
      expect(s.seen[0].headers).toMatchObject({ authorization: 'Bearer k', 'content-type': 'application/json', 'accept-encoding': 'gzip, deflate, br' });
      // Bytes and plain-object headers too.
      const again = await nodeFetch(`${s.base}/bytes`, { method: 'POST', headers: { 'X-Name': 'v' }, body: new TextEncoder().encode('{"b":2}') });
      expect(await again.json()).toEqual({ echo: { b: 2 } });
      expect(s.seen[1].headers['x-name']).toBe('v');
    } finally {
      await s.close();
    }
  });

  it('a JSON answer reads once, as text, JSON, bytes or a stream; other answers are plain Responses', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('plain é');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/problem+json; charset=utf-8' });
      res.end(JSON.stringify({ word: 'é' }));
    });
    try {
      const asJson = await nodeFetch(`${s.base}/json`);
      expect(asJson.bodyUsed).toBe(false);
      expect(await asJson.json()).toEqual({ word: 'é' });
      expect(asJson.bodyUsed).toBe(true);
      await expect(asJson.text()).rejects.toThrow(TypeError);
      expect(await (await nodeFetch(`${s.base}/json`)).text()).toBe('{"word":"é"}');
      expect(Buffer.from(await (await nodeFetch(`${s.base}/json`)).arrayBuffer()).toString()).toBe('{"word":"é"}');
      const streamed = await nodeFetch(`${s.base}/json`);
      const chunks: Uint8Array[] = [];
      for await (const chunk of streamed.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
      expect(Buffer.concat(chunks).toString()).toBe('{"word":"é"}');
      expect(streamed.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      const text = await nodeFetch(`${s.base}/text`);
      expect(await text.text()).toBe('plain é');
      expect(text).toBeInstanceOf(Response);
    } finally {
      await s.close();
    }
  });

  it('decodes a gzip or br answer, and gives a 204 no body', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/204') {
        res.writeHead(204).end();
        return;
      }
      const br = req.url === '/br';
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': br ? 'br' : 'gzip' });
      res.end((br ? zlib.brotliCompressSync : zlib.gzipSync)(Buffer.from(JSON.stringify({ packed: req.url }))));
    });
    try {
      expect(await (await nodeFetch(`${s.base}/gz`)).json()).toEqual({ packed: '/gz' });
      expect(await (await nodeFetch(`${s.base}/br`)).json()).toEqual({ packed: '/br' });
      const none = await nodeFetch(`${s.base}/204`, { method: 'DELETE' });
      expect(none.status).toBe(204);
      expect(none.body).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("rejects with the signal's reason on an abort and drops the request; a refused connection is a TypeError with its cause", async () => {
    const s = await serve(() => undefined); // never answers
    try {
      const controller = new AbortController();
      const pending = nodeFetch(`${s.base}/hangs`, { method: 'POST', body: '{}', signal: controller.signal });
      await new Promise((r) => setTimeout(r, 100));
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      await new Promise((r) => setTimeout(r, 100));
      expect(s.closed).toEqual(['/hangs']);
      await expect(nodeFetch(`${s.base}/x`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    } finally {
      await s.close();
    }
    const refused = await nodeFetch(`${s.base}/gone`).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as TypeError).message).toBe('fetch failed');
    expect(((refused as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('leaves FormData bodies (file uploads) to Node fetch', async () => {
    const s = await serve((_req, res) => res.end('{}'));
    try {
      const form = new FormData();
      form.append('file', new Blob(['abc']), 'a.txt');
      const res = await nodeFetch(`${s.base}/upload`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      expect(s.seen[0].headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
      expect(s.seen[0].body).toContain('filename="a.txt"');
    } finally {
      await s.close();
    }
  });

  it('under the OpenAI SDK: a result, an HTTP error with its headers, and the SDK timeout', async () => {
    const s = await serve((req, res) => {
      if (req.url!.startsWith('/v1/embeddings')) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '1500' });
        res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit' } }));
      } else if (req.url!.startsWith('/v1/models')) {
        // never answers: the SDK's own timeout aborts the call
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] }));
      }
    });
    try {
      const client = new OpenAI({ apiKey: 'k', baseURL: `${s.base}/v1`, maxRetries: 0, timeout: 300, fetch: nodeFetch });
      const done = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
      expect(done.choices[0].message.content).toBe('hi');
      const limited = await client.embeddings.create({ model: 'e', input: 'x' }).catch((err: unknown) => err);
      expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
      expect((limited as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after-ms')).toBe('1500');
      await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    } finally {
      await s.close();
    }
  });
});
