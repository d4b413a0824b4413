/**
 * A small, dependency-free fake of the Anthropic Messages API (built on `node:http` only).
 *
 * The real `@anthropic-ai/sdk` can talk to it; the SDK appends `/v1/messages` itself, so the
 * base URL has no `/v1`:
 *   const fake = await AnthropicFake.start();
 *   const client = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0 });
 *
 * Endpoint: POST /v1/messages (non-streaming). Anything else -> 404 with an Anthropic error body.
 * Like the real API it insists on credentials (`x-api-key` or `Authorization: Bearer`), on the
 * `anthropic-version` header and on `max_tokens`.
 *
 * Run directly (`node dist/test/fakes/anthropic-fake.js --port 8090 --latency 20 --no-record`) it
 * prints `ANTHROPIC_FAKE_URL=<baseUrl>` and runs until SIGTERM/SIGINT.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sampleFromSchema } from './openai-fake';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/messages'. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON (the raw string if it was not valid JSON, undefined if empty). */
  body: unknown;
}

export interface InjectedResponse {
  status: number;
  headers?: Record<string, string>;
  /**
   * JSON-encoded before sending; a Buffer is sent raw. When omitted, an Anthropic error body fits
   * the status: 429 rate_limit_error, 529 overloaded_error, other 5xx api_error, 401
   * authentication_error, other 4xx invalid_request_error; `{}` below 400.
   */
  body?: unknown;
}

export interface AnthropicFakeOptions {
  /** Default 0 = random free port. */
  port?: number;
  /** Default 0. Fixed latency added before every response, in ms. */
  latencyMs?: number;
  /** Default true; when false, `requests` stays empty (benchmarks). Counting still works. */
  record?: boolean;
}

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error';

interface OutgoingResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

interface InjectionEntry {
  response: InjectedResponse;
  remaining: number;
  suffix: string;
}

interface Waiter {
  n: number;
  suffix: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type Json = Record<string, unknown>;

const JSON_CT = 'application/json';
const DEFAULT_WAIT_TIMEOUT_MS = 5000;
const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
/** Below this `max_tokens` the answer is cut off (`stop_reason: 'max_tokens'`). */
const CUT_OFF_BELOW = 5;

/** Thrown by the handler to produce an Anthropic-shaped error response. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: AnthropicErrorType = 'invalid_request_error',
  ) {
    super(message);
  }
}

export function anthropicErrorBody(type: AnthropicErrorType, message: string): Json {
  return { type: 'error', error: { type, message } };
}

function jsonResponse(status: number, body: unknown): OutgoingResponse {
  return { status, headers: { 'content-type': JSON_CT }, body: JSON.stringify(body) };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function approxTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

// ---------------------------------------------------------------------------------------------
// POST /v1/messages

function checkHeaders(headers: http.IncomingHttpHeaders): void {
  const bearer = /^Bearer\s+\S+/i.test(headers.authorization ?? '');
  if (!headers['x-api-key'] && !bearer) {
    throw new ApiError(401, 'x-api-key header is required', 'authentication_error');
  }
  if (!headers['anthropic-version']) {
    throw new ApiError(400, 'anthropic-version: header is required');
  }
}

interface ContentInfo {
  texts: string[];
  images: number;
}

/** The text and image blocks of one message, validating each image as the real API does. */
function contentInfo(content: unknown, at: string): ContentInfo {
  if (typeof content === 'string') return { texts: [content], images: 0 };
  if (!Array.isArray(content)) throw new ApiError(400, `${at}.content: Input should be a valid list`);
  const info: ContentInfo = { texts: [], images: 0 };
  content.forEach((block, i) => {
    if (!isObject(block)) throw new ApiError(400, `${at}.content.${i}: Input should be an object`);
    if (block.type === 'text') {
      if (typeof block.text !== 'string') throw new ApiError(400, `${at}.content.${i}.text: Field required`);
      info.texts.push(block.text);
    } else if (block.type === 'image') {
      const source = block.source;
      if (!isObject(source) || source.type !== 'base64') {
        throw new ApiError(400, `${at}.content.${i}.image.source: only base64 sources are supported by the fake`);
      }
      if (typeof source.media_type !== 'string' || !IMAGE_MEDIA_TYPES.includes(source.media_type)) {
        throw new ApiError(400, `${at}.content.${i}.image.source.base64.media_type: Input should be ${IMAGE_MEDIA_TYPES.map((t) => `'${t}'`).join(', ')}`);
      }
      if (typeof source.data !== 'string' || source.data.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(source.data)) {
        throw new ApiError(400, `${at}.content.${i}.image.source.base64.data: expected non-empty base64 data`);
      }
      info.images++;
    }
  });
  return info;
}

function systemChars(system: unknown): number {
  if (typeof system === 'string') return system.length;
  if (!Array.isArray(system)) return 0;
  return system.reduce((n: number, b) => n + (isObject(b) && typeof b.text === 'string' ? b.text.length : 0), 0);
}

/** The tool a `tool_choice: {type: 'tool'}` forces, or undefined when none is forced. */
function forcedTool(body: Json): Json | undefined {
  const choice = body.tool_choice;
  if (!isObject(choice) || choice.type !== 'tool') return undefined;
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const tool = tools.find((t): t is Json => isObject(t) && t.name === choice.name);
  if (!tool) throw new ApiError(400, `tool_choice: Tool '${String(choice.name)}' not found in tools`);
  if (!isObject(tool.input_schema)) throw new ApiError(400, `tools.${tools.indexOf(tool)}.input_schema: Field required`);
  return tool;
}

function createMessage(body: Json, id: string): OutgoingResponse {
  if (typeof body.model !== 'string' || body.model.length === 0) throw new ApiError(400, 'model: Field required');
  const maxTokens = body.max_tokens;
  if (maxTokens === undefined) throw new ApiError(400, 'max_tokens: Field required');
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1) throw new ApiError(400, 'max_tokens: Input should be a positive integer');
  if (body.stream === true) throw new ApiError(400, 'stream: streaming is not supported by the Anthropic fake');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, 'messages: at least one message is required');

  let promptChars = systemChars(body.system);
  let lastUser: ContentInfo | undefined;
  messages.forEach((m, i) => {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      throw new ApiError(400, `messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
    const info = contentInfo(m.content, `messages.${i}`);
    promptChars += info.texts.join('').length;
    if (m.role === 'user') lastUser = info;
  });

  const cutOff = (maxTokens as number) < CUT_OFF_BELOW;
  const tool = forcedTool(body);
  let content: Json[];
  let outputChars: number;
  if (tool) {
    const input = sampleFromSchema(tool.input_schema);
    content = [{ type: 'tool_use', id: `toolu_${id}`, name: tool.name, input }];
    outputChars = JSON.stringify(input).length;
  } else {
    const images = lastUser && lastUser.images > 0 ? ` [images: ${lastUser.images}]` : '';
    let text = `echo: ${(lastUser?.texts ?? []).join('\n')}${images}`;
    if (cutOff) text = text.slice(0, (maxTokens as number) * 4);
    content = [{ type: 'text', text }];
    outputChars = text.length;
  }
  const outputTokens = Math.min(approxTokens(outputChars), maxTokens as number);
  return jsonResponse(200, {
    id: `msg_${id}`,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content,
    stop_reason: cutOff ? 'max_tokens' : tool ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: approxTokens(promptChars), output_tokens: outputTokens },
  });
}

// ---------------------------------------------------------------------------------------------
// the fake

export class AnthropicFake {
  readonly port: number;
  readonly baseUrl: string;
  readonly requests: RecordedRequest[] = [];

  private readonly initialLatency: number;
  private latency: number;
  private readonly record: boolean;
  private readonly counts = new Map<string, number>();
  private injections: InjectionEntry[] = [];
  private readonly hangSuffixes = new Set<string>();
  private hung: Array<() => void> = [];
  private waiters: Waiter[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: http.Server,
    port: number,
    opts: AnthropicFakeOptions,
  ) {
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.initialLatency = Math.max(0, opts.latencyMs ?? 0);
    this.latency = this.initialLatency;
    this.record = opts.record ?? true;
  }

  static start(opts: AnthropicFakeOptions = {}): Promise<AnthropicFake> {
    let fake: AnthropicFake | undefined;
    const server = http.createServer((req, res) => fake!.onRequest(req, res));
    server.keepAliveTimeout = 30_000;
    const early: Socket[] = [];
    server.on('connection', (socket: Socket) => (fake ? fake.trackSocket(socket) : early.push(socket)));
    return new Promise<AnthropicFake>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        fake = new AnthropicFake(server, (server.address() as AddressInfo).port, opts);
        for (const s of early) fake.trackSocket(s);
        resolve(fake);
      });
    });
  }

  setLatency(ms: number): void {
    this.latency = Math.max(0, ms);
  }

  /** The next `times` requests whose path ends with `pathSuffix` get `response` instead. */
  failNext(response: InjectedResponse, times = 1, pathSuffix?: string): void {
    if (times <= 0) return;
    this.injections.push({ response, remaining: times, suffix: pathSuffix ?? '' });
  }

  /** Holds every answer to a path ending with `pathSuffix` until `release()`. */
  hang(pathSuffix?: string): void {
    this.hangSuffixes.add(pathSuffix ?? '');
  }

  release(): void {
    this.hangSuffixes.clear();
    const hung = this.hung;
    this.hung = [];
    for (const send of hung) send();
  }

  waitForRequests(n: number, pathSuffix?: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    const suffix = pathSuffix ?? '';
    if (this.count(suffix) >= n) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('AnthropicFake is closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        n,
        suffix,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          const which = suffix ? ` ending with '${suffix}'` : '';
          reject(new Error(`AnthropicFake: timed out after ${timeoutMs}ms waiting for ${n} request(s)${which}; got ${this.count(suffix)}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  count(pathSuffix?: string): number {
    const suffix = pathSuffix ?? '';
    let total = 0;
    for (const [path, c] of this.counts) if (path.endsWith(suffix)) total += c;
    return total;
  }

  reset(): void {
    this.requests.length = 0;
    this.counts.clear();
    this.injections = [];
    this.latency = this.initialLatency;
    // Held requests get their normal answer rather than hanging into the next test.
    this.release();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.hung = [];
    this.hangSuffixes.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('AnthropicFake closed while waiting for requests'));
    }
    this.closing = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    });
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private trackSocket(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: unknown;
      let invalidJson = false;
      if (chunks.length > 0) {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
          invalidJson = true;
        }
      }
      this.dispatch(req, res, path, body, invalidJson);
    });
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: unknown, invalidJson: boolean): void {
    if (this.closed) {
      res.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    if (this.record) this.requests.push({ method, path, headers: req.headers, body });
    if (this.waiters.length > 0) this.notifyWaiters();

    const seq = ++this.seq;
    const requestId = `req_fake${seq}`;
    const injected = this.injections.length > 0 ? this.takeInjection(path) : undefined;
    let out: OutgoingResponse;
    if (injected) {
      out = injectedResponse(injected);
    } else {
      try {
        out = this.route(method, path, req.headers, body, invalidJson, `fake${seq}`);
      } catch (e) {
        out =
          e instanceof ApiError
            ? jsonResponse(e.status, anthropicErrorBody(e.type, e.message))
            : jsonResponse(500, anthropicErrorBody('api_error', `AnthropicFake internal error: ${(e as Error).message}`));
      }
    }
    out.headers['request-id'] = requestId;

    if (this.latency > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.deliver(res, path, out);
      }, this.latency);
      this.timers.add(timer);
    } else {
      this.deliver(res, path, out);
    }
  }

  private route(method: string, path: string, headers: http.IncomingHttpHeaders, body: unknown, invalidJson: boolean, id: string): OutgoingResponse {
    if (method !== 'POST' || path !== '/v1/messages') throw new ApiError(404, `Not found: ${method} ${path}`, 'not_found_error');
    checkHeaders(headers);
    if (invalidJson || !isObject(body)) throw new ApiError(400, 'The request body is not valid JSON.');
    return createMessage(body, id);
  }

  private deliver(res: http.ServerResponse, path: string, out: OutgoingResponse): void {
    for (const s of this.hangSuffixes) {
      if (path.endsWith(s)) {
        this.hung.push(() => send(res, out));
        return;
      }
    }
    send(res, out);
  }

  private takeInjection(path: string): InjectedResponse | undefined {
    const i = this.injections.findIndex((entry) => path.endsWith(entry.suffix));
    if (i < 0) return undefined;
    const entry = this.injections[i];
    if (--entry.remaining <= 0) this.injections.splice(i, 1);
    return entry.response;
  }

  private notifyWaiters(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.count(w.suffix) >= w.n) {
        clearTimeout(w.timer);
        w.resolve();
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }
}

function injectedResponse(inj: InjectedResponse): OutgoingResponse {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(inj.headers ?? {})) headers[k.toLowerCase()] = v;
  if (Buffer.isBuffer(inj.body)) return { status: inj.status, headers, body: inj.body };
  headers['content-type'] ??= JSON_CT;
  return { status: inj.status, headers, body: JSON.stringify(inj.body !== undefined ? inj.body : defaultInjectedBody(inj.status)) };
}

function defaultInjectedBody(status: number): unknown {
  if (status === 429) return anthropicErrorBody('rate_limit_error', 'Number of requests has exceeded your rate limit');
  if (status === 529) return anthropicErrorBody('overloaded_error', 'Overloaded');
  if (status >= 500) return anthropicErrorBody('api_error', 'Internal server error');
  if (status === 401) return anthropicErrorBody('authentication_error', 'invalid x-api-key');
  if (status >= 400) return anthropicErrorBody('invalid_request_error', `Injected error (HTTP ${status})`);
  return {};
}

function send(res: http.ServerResponse, out: OutgoingResponse): void {
  if (res.destroyed || res.writableEnded) return;
  out.headers['content-length'] = String(typeof out.body === 'string' ? Buffer.byteLength(out.body) : out.body.length);
  res.writeHead(out.status, out.headers);
  res.end(out.body);
}

// ---------------------------------------------------------------------------------------------
// CLI: `node anthropic-fake.js [--port N] [--latency MS] [--no-record]`

function parseCliArgs(argv: string[]): AnthropicFakeOptions {
  const opts: AnthropicFakeOptions = { port: 0, latencyMs: 0, record: true };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) throw new Error(`anthropic-fake: ${flag} expects a non-negative number, got ${String(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
    if (flag === '--port') opts.port = num(flag, value());
    else if (flag === '--latency') opts.latencyMs = num(flag, value());
    else if (flag === '--no-record') opts.record = false;
    else throw new Error(`anthropic-fake: unknown argument ${arg}`);
  }
  return opts;
}

if (require.main === module) {
  let opts: AnthropicFakeOptions;
  try {
    opts = parseCliArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  AnthropicFake.start(opts).then(
    (fake) => {
      process.stdout.write(`ANTHROPIC_FAKE_URL=${fake.baseUrl}\n`);
      const stop = () => void fake.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: Error) => {
      process.stderr.write(`anthropic-fake: failed to start: ${err.message}\n`);
      process.exit(1);
    },
  );
}
