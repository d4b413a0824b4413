/**
 * The control plumbing the provider fakes share (built on `node:http` only): listening on
 * 127.0.0.1, recording and counting requests, latency, `failNext` injections, `hang`/`release`,
 * `waitForRequests`, `reset`, `close`, and script mode. A fake subclasses {@link FakeServer} and
 * supplies only its wire protocol: how a request is read, how it is answered, its error bodies.
 *
 * The OpenAI fake is used by the benchmark, so the per-request path is kept cheap: no logging, no
 * timers unless latency is configured, and nothing is recorded with `record: false`.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeServerOptions {
  /** Default 0 = random free port. */
  port?: number;
  /** Default 0. Fixed latency added before every response, in ms. */
  latencyMs?: number;
  /** Default true; when false, `requests` stays empty (benchmarks). Counting still works. */
  record?: boolean;
  /** The provider's own requests-per-minute cap (sliding 60 s window), answered with 429 past it. Default none. */
  rpm?: number;
  /** The provider's own tokens-per-minute cap, as {@link rpm}. Default none. */
  tpm?: number;
}

export interface FakeInjectedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface OutgoingResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface FakeServerConfig {
  /** The class name, as error messages start with it (e.g. 'OpenAIFake'). */
  name: string;
  baseUrl: string;
  /** The response header carrying the request id (e.g. 'x-request-id'). */
  requestIdHeader: string;
  /** Content-type of JSON-encoded injected bodies. */
  jsonContentType: string;
  /** When true, an injected string body with a non-JSON content-type is sent as is, not JSON-encoded. */
  rawTextInjections?: boolean;
}

interface InjectionEntry<TInjected> {
  response: TInjected;
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

const DEFAULT_WAIT_TIMEOUT_MS = 5000;

/**
 * @typeParam TRecorded what `requests` holds.
 * @typeParam TRequest what the subclass reads from a request and answers from.
 */
export abstract class FakeServer<TRecorded, TRequest, TInjected extends FakeInjectedResponse = FakeInjectedResponse> {
  readonly port: number;
  readonly baseUrl: string;
  readonly requests: TRecorded[] = [];

  private readonly name: string;
  private readonly requestIdHeader: string;
  private readonly jsonContentType: string;
  private readonly rawTextInjections: boolean;
  private readonly initialLatency: number;
  private latency: number;
  private readonly record: boolean;
  private readonly counts = new Map<string, number>();
  private injections: InjectionEntry<TInjected>[] = [];
  private readonly hangSuffixes = new Set<string>();
  private hung: Array<() => void> = [];
  private waiters: Waiter[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  protected constructor(
    private readonly server: http.Server,
    port: number,
    opts: FakeServerOptions,
    config: FakeServerConfig,
  ) {
    this.port = port;
    this.baseUrl = config.baseUrl;
    this.name = config.name;
    this.requestIdHeader = config.requestIdHeader;
    this.jsonContentType = config.jsonContentType;
    this.rawTextInjections = config.rawTextInjections ?? false;
    this.initialLatency = Math.max(0, opts.latencyMs ?? 0);
    this.latency = this.initialLatency;
    this.record = opts.record ?? true;
  }

  /** Starts an HTTP server on 127.0.0.1 and builds the fake around it once it listens. */
  protected static listen<F extends FakeServer<unknown, unknown, FakeInjectedResponse>>(
    opts: FakeServerOptions,
    create: (server: http.Server, port: number) => F,
  ): Promise<F> {
    let fake: F | undefined;
    const server = http.createServer((req, res) => fake!.onRequest(req, res));
    server.keepAliveTimeout = 30_000;
    // Connections can arrive between `listen` and the fake's construction.
    const early: Socket[] = [];
    server.on('connection', (socket: Socket) => {
      if (fake) fake.trackSocket(socket);
      else early.push(socket);
    });
    return new Promise<F>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        const { port } = server.address() as AddressInfo;
        fake = create(server, port);
        for (const s of early) fake.trackSocket(s);
        resolve(fake);
      });
    });
  }

  /** Reads one request, then hands it to {@link dispatch} with the path it is counted under. */
  protected abstract onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;

  /** Answers one request; a throw becomes {@link errorResponse}. */
  protected abstract answer(request: TRequest, seq: number): OutgoingResponse;

  protected abstract toRecorded(request: TRequest): TRecorded;

  /** The provider's response for an error thrown by {@link answer}. */
  protected abstract errorResponse(err: unknown): OutgoingResponse;

  /** The body of an injected response that gives none. */
  protected abstract defaultInjectedBody(status: number): unknown;

  /** The value of the request-id header for the `seq`-th request. */
  protected abstract requestId(seq: number): string;

  setLatency(ms: number): void {
    this.latency = Math.max(0, ms);
  }

  /** The next `times` requests whose path ends with `pathSuffix` get `response` instead. */
  failNext(response: TInjected, times = 1, pathSuffix?: string): void {
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
    if (this.closed) return Promise.reject(new Error(`${this.name} is closed`));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        n,
        suffix,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          const which = suffix ? ` ending with '${suffix}'` : '';
          reject(new Error(`${this.name}: timed out after ${timeoutMs}ms waiting for ${n} request(s)${which}; got ${this.count(suffix)}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Requests seen whose path ends with `pathSuffix` (all when omitted). */
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
      w.reject(new Error(`${this.name} closed while waiting for requests`));
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

  /** Counts and records `request`, then answers it (injection or {@link answer}) after the latency. */
  protected dispatch(res: http.ServerResponse, path: string, request: TRequest): void {
    if (this.closed) {
      res.destroy();
      return;
    }
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    if (this.record) this.requests.push(this.toRecorded(request));
    if (this.waiters.length > 0) this.notifyWaiters();

    const seq = ++this.seq;
    const injected = this.injections.length > 0 ? this.takeInjection(path) : undefined;
    let out: OutgoingResponse;
    if (injected) {
      out = this.injectedResponse(injected);
    } else {
      try {
        out = this.answer(request, seq);
      } catch (e) {
        out = this.errorResponse(e);
      }
    }
    out.headers[this.requestIdHeader] = this.requestId(seq);

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

  private trackSocket(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private deliver(res: http.ServerResponse, path: string, out: OutgoingResponse): void {
    if (this.hangSuffixes.size > 0) {
      for (const s of this.hangSuffixes) {
        if (path.endsWith(s)) {
          this.hung.push(() => send(res, out));
          return;
        }
      }
    }
    send(res, out);
  }

  private takeInjection(path: string): TInjected | undefined {
    for (let i = 0; i < this.injections.length; i++) {
      const entry = this.injections[i];
      if (!path.endsWith(entry.suffix)) continue;
      entry.remaining--;
      if (entry.remaining <= 0) this.injections.splice(i, 1);
      return entry.response;
    }
    return undefined;
  }

  private injectedResponse(inj: TInjected): OutgoingResponse {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(inj.headers ?? {})) headers[k.toLowerCase()] = v;
    if (Buffer.isBuffer(inj.body)) return { status: inj.status, headers, body: inj.body };
    const contentType = headers['content-type'];
    if (this.rawTextInjections && typeof inj.body === 'string' && contentType !== undefined && !contentType.includes('json')) {
      return { status: inj.status, headers, body: inj.body };
    }
    headers['content-type'] ??= this.jsonContentType;
    const value = inj.body !== undefined ? inj.body : this.defaultInjectedBody(inj.status);
    return { status: inj.status, headers, body: JSON.stringify(value) };
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

function send(res: http.ServerResponse, out: OutgoingResponse): void {
  if (res.destroyed || res.writableEnded) return;
  const headers = out.headers;
  headers['content-length'] = String(typeof out.body === 'string' ? Buffer.byteLength(out.body) : out.body.length);
  res.writeHead(out.status, headers);
  res.end(out.body);
}

/** Splits a request URL into path and query (without '?'). */
export function splitUrl(url: string | undefined): { path: string; query: string } {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q >= 0 ? { path: u.slice(0, q), query: u.slice(q + 1) } : { path: u, query: '' };
}

/**
 * Reads the whole body and parses it as JSON: `body` is undefined when empty and the raw string
 * (with `invalidJson` set) when it does not parse.
 */
export function readJsonBody(req: http.IncomingMessage, done: (body: unknown, invalidJson: boolean) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: unknown;
    let invalidJson = false;
    if (chunks.length > 0) {
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
        invalidJson = true;
      }
    }
    done(body, invalidJson);
  });
}

// ---------------------------------------------------------------------------------------------
// CLI: `node <name>.js [--port N] [--latency MS] [--no-record]`

function parseCliArgs(cliName: string, argv: string[]): FakeServerOptions {
  const opts: FakeServerOptions = { port: 0, latencyMs: 0, record: true };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) {
      throw new Error(`${cliName}: ${flag} expects a non-negative number, got ${String(v)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--port':
        opts.port = num(flag, value());
        break;
      case '--latency':
        opts.latencyMs = num(flag, value());
        break;
      case '--no-record':
        opts.record = false;
        break;
      case '--rpm':
        opts.rpm = num(flag, value());
        break;
      case '--tpm':
        opts.tpm = num(flag, value());
        break;
      default:
        throw new Error(`${cliName}: unknown argument ${arg}`);
    }
  }
  return opts;
}

/**
 * Script mode: parses the arguments, starts the fake, prints `<urlVar>=<baseUrl>` and runs until
 * SIGTERM/SIGINT. Exits 2 on bad arguments, 1 if the server cannot start.
 */
export function runFakeFromCli(
  cliName: string,
  urlVar: string,
  start: (opts: FakeServerOptions) => Promise<{ baseUrl: string; close(): Promise<void> }>,
  argv: string[] = process.argv.slice(2),
): void {
  let opts: FakeServerOptions;
  try {
    opts = parseCliArgs(cliName, argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  start(opts).then(
    (fake) => {
      process.stdout.write(`${urlVar}=${fake.baseUrl}\n`);
      const stop = () => {
        void fake.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: Error) => {
      process.stderr.write(`${cliName}: failed to start: ${err.message}\n`);
      process.exit(1);
    },
  );
}
