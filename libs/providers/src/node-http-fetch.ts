import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import type { Readable } from 'node:stream';

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * A `fetch` for the provider SDKs (their `fetch` option): requests with a string or byte body,
 * or none, go over node:http(s) with keep-alive agents, and the answer is read whole before the
 * promise resolves (gzip, deflate and br decoded, as fetch does). Node's own fetch (undici's,
 * over web streams, with a Request, a fetch controller and an abort-signal chain per call) costs
 * about twice the CPU per provider call, and a worker at full load spends most of its time in
 * its provider calls (bench/RESULTS.md). Anything else (FormData or stream bodies, i.e. file
 * uploads; a Request object; a URL that is not http or https) goes to Node's fetch.
 *
 * As fetch does: an abort of `init.signal` rejects with the signal's reason (an AbortError for
 * the SDKs' own timeouts); a network error rejects with a TypeError "fetch failed" whose cause is
 * the socket's error. Unlike fetch, redirects are not followed (the providers' APIs send none: a
 * 3xx is returned as it is).
 */
export function createNodeHttpFetch(): typeof fetch {
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

  const nodeFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? new URL(input) : input instanceof URL ? input : undefined;
    const body = init.body;
    const plainBody = body === undefined || body === null || typeof body === 'string' || ArrayBuffer.isView(body);
    if (!url || !plainBody || (url.protocol !== 'http:' && url.protocol !== 'https:')) return fetch(input, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortReason(signal));

    return new Promise<Response>((resolve, reject) => {
      const headers = plainHeaders(init.headers);
      if (!hasHeader(headers, 'accept-encoding')) headers['accept-encoding'] = 'gzip, deflate, br';
      const transport = url.protocol === 'https:' ? https : http;
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = () => {
        fail(abortReason(signal!));
        req.destroy();
      };
      const req = transport.request(
        url,
        { method: init.method ?? 'GET', headers, agent: agents[url.protocol as 'http:' | 'https:'] },
        (res) => {
          const encoding = String(res.headers['content-encoding'] ?? '').trim().toLowerCase();
          const decoder = DECODERS[encoding]?.();
          const source: Readable | NodeJS.ReadWriteStream = decoder ? res.pipe(decoder) : res;
          const chunks: Buffer[] = [];
          source.on('data', (chunk: Buffer) => chunks.push(chunk));
          source.on('error', (err: Error) => fail(new TypeError('fetch failed', { cause: err })));
          res.on('aborted', () => fail(new TypeError('fetch failed', { cause: new Error('the response was cut off') })));
          source.on('end', () => {
            if (settled) return;
            try {
              const status = res.statusCode ?? 502;
              const responseHeaders = new Headers();
              for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
              const init = { status, statusText: res.statusMessage ?? '', headers: responseHeaders };
              const bytes = NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks);
              const response = bytes && isJson(responseHeaders.get('content-type')) ? readJsonResponse(bytes, init) : new Response(bytes, init);
              settled = true;
              signal?.removeEventListener('abort', onAbort);
              resolve(response);
            } catch (err) {
              fail(new TypeError('fetch failed', { cause: err }));
            }
          });
        },
      );
      req.on('error', (err) => fail(new TypeError('fetch failed', { cause: err })));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(typeof body === 'string' ? body : body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined);
    });
  };
  return nodeFetch as typeof fetch;
}

/** application/json or a +json media type: the SDKs read such an answer with json() or text(). */
function isJson(contentType: string | null): boolean {
  const type = contentType?.split(';', 1)[0].trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

/**
 * A JSON answer, already read whole: a Response whose json(), text() and arrayBuffer() use the
 * bytes at hand, not a web stream made of them and read back chunk by chunk (that stream,
 * its reader and the transfer machinery behind it cost about as much CPU as the rest of the
 * call). Its `body` is a stream made on first use.
 */
function readJsonResponse(bytes: Buffer, init: ResponseInit): Response {
  const response = new Response(null, init);
  let used = false;
  let stream: ReadableStream<Uint8Array> | undefined;
  const take = (): Buffer => {
    if (used) throw new TypeError('Body is unusable: Body has already been read');
    used = true;
    return bytes;
  };
  const properties: PropertyDescriptorMap = {
    bodyUsed: { get: () => used },
    body: { get: () => (stream ??= new Response(bytes).body!) },
    text: { value: async () => take().toString('utf8') },
    json: { value: async () => JSON.parse(take().toString('utf8')) as unknown },
    arrayBuffer: { value: async () => new Uint8Array(take()).buffer },
  };
  return Object.defineProperties(response, properties);
}

/** One per process: its keep-alive agents are shared by every adapter. */
export const nodeHttpFetch = createNodeHttpFetch();

/**
 * What fetch rejects with on an abort: the signal's reason. One that is no Error of this realm
 * (a DOMException made in another V8 context, as under Jest) becomes an Error named AbortError,
 * since the SDKs test `instanceof Error` before they look for that name.
 */
function abortReason(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error((reason as { message?: string } | undefined)?.message ?? 'This operation was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

/** Request headers as a plain object, from any form fetch takes. */
function plainHeaders(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  if (typeof (headers as Headers).forEach === 'function' && !Array.isArray(headers)) {
    (headers as Headers).forEach((value, name) => (out[name] = value));
  } else if (Array.isArray(headers)) {
    for (const [name, value] of headers) out[name.toLowerCase()] = value;
  } else {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name.toLowerCase()] = String(value);
  }
  return out;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(headers, name);
}
