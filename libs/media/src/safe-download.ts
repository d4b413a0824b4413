import { createHash, randomBytes } from 'node:crypto';
import * as dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isForbiddenAddress } from './ip-policy';
import { MediaError } from './media-error';
import { sniffMedia } from './mime-sniff';

export interface DownloadOptions {
  /** Size cap in bytes; a bigger body fails with media_too_large as soon as the cap is crossed. */
  maxBytes: number;
  /** MEDIA_ALLOW_PRIVATE_URLS: when true, loopback/private/link-local... addresses may be fetched. */
  allowPrivate: boolean;
  /** Folder for the temp file (created recursively if missing). */
  tmpDir: string;
  /** Budget for the whole download (DNS, redirects, body); exceeded -> media_download_timeout. */
  totalTimeoutMs: number;
  /** TCP connect budget per hop; default 10000. */
  connectTimeoutMs?: number;
  /** No bytes received for this long -> media_download_timeout; default 30000. */
  idleTimeoutMs?: number;
  /** Default 5. */
  maxRedirects?: number;
  /** Aborting rejects with the signal's reason and deletes the partial file. */
  signal?: AbortSignal;
  /** DNS resolver, for tests; default dns.lookup. Called with `{ all: true }`. */
  lookup?: typeof dns.lookup;
  /**
   * TEST ONLY. Lets the given addresses through the address policy although allowPrivate is false,
   * so tests can serve the first hop from 127.0.0.1 and check that a redirect to a forbidden
   * address is refused. Never set this in production code.
   * @internal
   */
  _allowAddress?: (ip: string) => boolean;
}

export interface DownloadedFile {
  path: string;
  bytes: number;
  mime?: string;
  ext?: string;
  sha256: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 5;
const SNIFF_BYTES = 64;
const MAX_TIMER_MS = 2_147_483_647;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'inference-gateway-media/1.0';
/** Errors that say nothing about the server's answer to this request but about the local setup or a bad peer. */
const PERMANENT_ERROR_CODES = new Set(['ENOTFOUND', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST']);

type LookupAll = (
  hostname: string,
  options: { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[] | string, family?: number) => void,
) => void;

interface Settings {
  maxBytes: number;
  allowPrivate: boolean;
  totalTimeoutMs: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRedirects: number;
  signal?: AbortSignal;
  lookup: LookupAll;
  allowAddress?: (ip: string) => boolean;
}

interface Destroyable {
  destroy(error?: Error): unknown;
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/** A URL as it may be shown to a client: no userinfo, no query string, no fragment, bounded length. */
function safeUrl(url: URL): string {
  const text = `${url.protocol}//${url.host}${url.pathname}`;
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/** "1500 bytes" or "45.0 MB (47185920 bytes)". */
function size(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${(bytes / (1024 * 1024)).toFixed(1)} MB (${bytes} bytes)`;
}

function article(word: string): string {
  return /^(?:[aeio]|un(?!i))/i.test(word) ? 'an' : 'a';
}

function tooLarge(url: URL, maxBytes: number, declared?: number): MediaError {
  const what =
    declared === undefined
      ? `media at ${safeUrl(url)} is larger than the limit of ${size(maxBytes)}`
      : `media at ${safeUrl(url)} is ${size(declared)}, which exceeds the limit of ${size(maxBytes)}`;
  return new MediaError(what, 'media_too_large', false, { url: safeUrl(url), maxBytes, declaredBytes: declared });
}

function abortError(): Error {
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  (err as NodeJS.ErrnoException).code = 'ABORT_ERR';
  return err;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/** Maps a low-level failure (socket, TLS, DNS, file system) to a MediaError. */
function toMediaError(err: unknown, url: URL): MediaError {
  if (err instanceof MediaError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const permanent =
    (code !== undefined && PERMANENT_ERROR_CODES.has(code)) ||
    (code !== undefined && (code.startsWith('HPE_') || code.includes('CERT') || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')));
  const reason = code ? `${code}: ${e.message}` : String(e?.message ?? err);
  return new MediaError(`downloading media URL ${safeUrl(url)} failed (${reason})`, 'media_download_failed', !permanent, {
    url: safeUrl(url),
    cause: code,
  });
}

// ---------------------------------------------------------------------------------------------
// Cancellation: the first failure (abort, total timeout, idle timeout, size cap) wins, destroys
// every live socket/stream of the transfer, and is what the download rejects with.
// ---------------------------------------------------------------------------------------------

class Transfer {
  failed = false;
  reason: unknown;
  private readonly live = new Set<Destroyable>();
  private rejectFailure!: (reason: unknown) => void;
  private readonly failure = new Promise<never>((_, reject) => (this.rejectFailure = reject));

  private closed = false;

  constructor() {
    this.failure.catch(() => undefined);
  }

  fail(reason: unknown): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.reason = reason;
    this.rejectFailure(reason);
    for (const item of this.live) item.destroy(asError(reason));
    this.live.clear();
  }

  track(item: Destroyable): void {
    if (this.failed) item.destroy(asError(this.reason));
    else if (this.closed) item.destroy();
    else this.live.add(item);
  }

  /** Ends the transfer: destroys whatever is still open (without an error); later failures are ignored. */
  close(): void {
    this.closed = true;
    for (const item of this.live) item.destroy();
    this.live.clear();
  }

  release(item: Destroyable): void {
    this.live.delete(item);
    item.destroy();
  }

  /** Settles with `promise`, or rejects as soon as the transfer fails. */
  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failure]);
  }

  /** The error a failed step should surface: the transfer's failure reason if there is one. */
  error(err: unknown, url: URL): unknown {
    return this.failed ? this.reason : toMediaError(err, url);
  }
}

// ---------------------------------------------------------------------------------------------
// URL and address checks
// ---------------------------------------------------------------------------------------------

function checkUrl(url: URL, original: URL | undefined): URL {
  const via = original && original.href !== url.href ? ` (redirected from ${safeUrl(original)})` : '';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MediaError(
      `media URL scheme "${url.protocol.replace(/:$/, '')}"${via} is not allowed; only http and https URLs can be downloaded`,
      'url_not_allowed',
      false,
      { scheme: url.protocol },
    );
  }
  if (url.username || url.password) {
    throw new MediaError(
      `media URL ${safeUrl(url)}${via} contains credentials (user:password@), which are not allowed`,
      'url_not_allowed',
    );
  }
  if (!url.hostname) throw new MediaError(`media URL ${safeUrl(url)}${via} has no host`, 'url_not_allowed');
  return url;
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MediaError('media URL is not a valid absolute URL (expected http:// or https://)', 'url_not_allowed');
  }
  return checkUrl(url, undefined);
}

function bareHost(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function vet(url: URL, original: URL, addresses: LookupAddress[], s: Settings): void {
  if (s.allowPrivate) return;
  for (const { address } of addresses) {
    if (s.allowAddress?.(address)) continue;
    const reason = isForbiddenAddress(address);
    if (reason === undefined) continue;
    const via = original.href !== url.href ? ` (redirected from ${safeUrl(original)})` : '';
    throw new MediaError(
      `media URL ${safeUrl(url)}${via} resolves to ${article(reason)} ${reason} address (${address}), which is not allowed; ` +
        'set MEDIA_ALLOW_PRIVATE_URLS=true to allow it',
      'url_not_allowed',
      false,
      { url: safeUrl(url), address, reason },
    );
  }
}

/** Resolves the host of `url` once and checks every address; the connection then uses exactly these. */
async function resolve(url: URL, original: URL, s: Settings, t: Transfer): Promise<LookupAddress[]> {
  const host = bareHost(url);
  const family = isIP(host);
  let addresses: LookupAddress[];
  if (family !== 0) {
    addresses = [{ address: host, family }];
  } else {
    addresses = await t.race(
      new Promise<LookupAddress[]>((resolvePromise, reject) => {
        s.lookup(host, { all: true }, (err, result, fam) => {
          if (err) {
            reject(
              new MediaError(
                `could not resolve the host of media URL ${safeUrl(url)} (${err.code ?? err.message})`,
                'media_download_failed',
                err.code !== 'ENOTFOUND',
                { url: safeUrl(url), cause: err.code },
              ),
            );
          } else if (typeof result === 'string') {
            resolvePromise([{ address: result, family: fam ?? isIP(result) }]);
          } else {
            resolvePromise(result ?? []);
          }
        });
      }),
    );
    addresses = addresses.filter((a) => isIP(a.address) !== 0);
    if (addresses.length === 0) {
      throw new MediaError(`the host of media URL ${safeUrl(url)} has no addresses`, 'media_download_failed', true);
    }
  }
  vet(url, original, addresses, s);
  return addresses;
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/** A lookup for http(s).request that only ever answers with the already vetted addresses. */
function pinnedLookup(addresses: LookupAddress[]) {
  return (
    _hostname: string,
    options: dns.LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    if (options?.all) callback(null, addresses.map((a) => ({ ...a })));
    else callback(null, addresses[0].address, addresses[0].family);
  };
}

function request(url: URL, addresses: LookupAddress[], s: Settings, t: Transfer): Promise<http.IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    const host = bareHost(url);
    const literal = isIP(host) !== 0;
    const options: https.RequestOptions = {
      method: 'GET',
      hostname: host,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: { 'user-agent': USER_AGENT, accept: '*/*', 'accept-encoding': 'identity' },
      agent: false,
      ...(literal ? {} : { lookup: pinnedLookup(addresses) as unknown as typeof dns.lookup, servername: host }),
    };
    const req = (url.protocol === 'https:' ? https : http).request(options);
    t.track(req);

    let connectTimer: NodeJS.Timeout | undefined;
    const clearConnectTimer = (): void => {
      if (connectTimer) clearTimeout(connectTimer);
      connectTimer = undefined;
    };
    req.on('socket', (socket: Socket) => {
      const startIdleTimer = (): void => {
        clearConnectTimer();
        socket.setTimeout(s.idleTimeoutMs, () =>
          t.fail(
            new MediaError(
              `media URL ${safeUrl(url)} sent no data for ${s.idleTimeoutMs} ms`,
              'media_download_timeout',
              true,
              { url: safeUrl(url), idleTimeoutMs: s.idleTimeoutMs },
            ),
          ),
        );
      };
      if (!socket.connecting) return startIdleTimer();
      connectTimer = setTimeout(
        () =>
          t.fail(
            new MediaError(
              `could not connect to the host of media URL ${safeUrl(url)} within ${s.connectTimeoutMs} ms`,
              'media_download_timeout',
              true,
              { url: safeUrl(url), connectTimeoutMs: s.connectTimeoutMs },
            ),
          ),
        s.connectTimeoutMs,
      );
      socket.once('connect', startIdleTimer);
    });
    req.on('error', (err) => {
      clearConnectTimer();
      reject(err);
    });
    req.on('close', clearConnectTimer);
    req.on('response', (res) => {
      clearConnectTimer();
      res.on('error', () => undefined); // surfaced through the pipeline / Transfer instead
      t.track(res);
      resolvePromise(res);
    });
    req.end();
  });
}

function statusError(url: URL, original: URL, res: http.IncomingMessage): MediaError {
  const status = res.statusCode ?? 0;
  const text = res.statusMessage ? ` ${res.statusMessage}` : '';
  const via = original.href !== url.href ? ` (redirected from ${safeUrl(original)})` : '';
  return new MediaError(
    `media URL ${safeUrl(url)}${via} returned HTTP ${status}${text}`,
    'media_download_failed',
    status >= 500 || status === 429,
    { url: safeUrl(url), status },
  );
}

/** Follows redirects (each hop re-checked) and returns the final 2xx response, headers checked. */
async function open(rawUrl: string, s: Settings, t: Transfer): Promise<{ res: http.IncomingMessage; url: URL }> {
  const original = parseUrl(rawUrl);
  let url = original;
  for (let redirects = 0; ; redirects++) {
    let res: http.IncomingMessage;
    try {
      const addresses = await resolve(url, original, s, t);
      res = await t.race(request(url, addresses, s, t));
    } catch (err) {
      throw t.error(err, url);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECT_STATUSES.has(status) && location) {
      t.release(res);
      if (redirects >= s.maxRedirects) {
        throw new MediaError(
          `media URL ${safeUrl(original)} redirected more than ${s.maxRedirects} times`,
          'media_download_failed',
          false,
          { url: safeUrl(original), maxRedirects: s.maxRedirects },
        );
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new MediaError(`media URL ${safeUrl(url)} redirected to an invalid URL`, 'media_download_failed', false);
      }
      url = checkUrl(next, original);
      continue;
    }
    if (status < 200 || status > 299) {
      t.release(res);
      throw statusError(url, original, res);
    }
    const declared = res.headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > s.maxBytes) {
      t.release(res);
      throw tooLarge(url, s.maxBytes, Number(declared));
    }
    return { res, url };
  }
}

/** Counts, hashes and sniffs the body as it flows, and stops it the moment it exceeds the cap. */
class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private head = Buffer.alloc(0);

  constructor(
    private readonly maxBytes: number,
    private readonly onTooLarge: () => MediaError,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return callback(this.onTooLarge());
    if (this.head.length < SNIFF_BYTES) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, SNIFF_BYTES - this.head.length)]);
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  sha256(): string {
    return this.hash.digest('hex');
  }

  sniffed(): { mime?: string; ext?: string } {
    const sniffed = sniffMedia(this.head);
    return sniffed ? { mime: sniffed.mime, ext: sniffed.ext } : {};
  }
}

function settings(opts: Omit<DownloadOptions, 'tmpDir'>): Settings {
  // setTimeout treats delays above 2^31-1 ms (or NaN) as 1 ms, so bound them.
  const timeout = (value: number | undefined, fallback: number): number =>
    value === undefined || Number.isNaN(value) || value <= 0 ? fallback : Math.min(value, MAX_TIMER_MS);
  return {
    maxBytes: opts.maxBytes,
    allowPrivate: opts.allowPrivate,
    totalTimeoutMs: timeout(opts.totalTimeoutMs, MAX_TIMER_MS),
    connectTimeoutMs: timeout(opts.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    idleTimeoutMs: timeout(opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    maxRedirects: opts.maxRedirects !== undefined && opts.maxRedirects >= 0 ? opts.maxRedirects : DEFAULT_MAX_REDIRECTS,
    signal: opts.signal,
    lookup: (opts.lookup ?? dns.lookup) as unknown as LookupAll,
    allowAddress: opts._allowAddress,
  };
}

/** Runs `body` under the transfer's abort signal and total timeout. */
async function withTransfer<T>(url: string, s: Settings, body: (t: Transfer) => Promise<T>): Promise<T> {
  if (s.signal?.aborted) throw s.signal.reason ?? abortError();
  const t = new Transfer();
  const onAbort = (): void => t.fail(s.signal?.reason ?? abortError());
  s.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    let shown = 'media URL';
    try {
      shown = `media URL ${safeUrl(new URL(url))}`;
    } catch {
      // parse errors are reported by open()
    }
    t.fail(
      new MediaError(`downloading ${shown} took longer than ${s.totalTimeoutMs} ms`, 'media_download_timeout', true, {
        totalTimeoutMs: s.totalTimeoutMs,
      }),
    );
  }, s.totalTimeoutMs);
  try {
    return await body(t);
  } catch (err) {
    throw t.failed ? t.reason : err;
  } finally {
    clearTimeout(timer);
    s.signal?.removeEventListener('abort', onAbort);
    t.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Downloads `url` into a new file in `tmpDir`, safely: http(s) only, no credentials in the URL,
 * every resolved address checked against the private/loopback/metadata policy (unless allowPrivate)
 * and the connection pinned to the checked address, redirects followed manually and re-checked,
 * the size cap enforced on the declared length and on the bytes actually received, and total,
 * connect and idle timeouts. The body is streamed to `<tmpDir>/dl-<random>.part` with backpressure,
 * hashed and sniffed on the way, then renamed to `dl-<random>.<ext or bin>`. On any failure the
 * partial file is deleted. The caller owns the returned file (see removeQuietly).
 */
export async function downloadToFile(url: string, opts: DownloadOptions): Promise<DownloadedFile> {
  const s = settings(opts);
  return withTransfer(url, s, async (t) => {
    const { res, url: finalUrl } = await open(url, s, t);
    await t.race(fsp.mkdir(opts.tmpDir, { recursive: true })).catch((err) => {
      throw t.error(err, finalUrl);
    });
    const id = randomBytes(12).toString('hex');
    const partPath = join(opts.tmpDir, `dl-${id}.part`);
    let created = false;
    try {
      // The file exists before any byte flows, so a later unlink can never race its creation.
      const handle = await fsp.open(partPath, 'wx', 0o600);
      created = true;
      if (t.failed) {
        await handle.close();
        throw t.reason;
      }
      const file = handle.createWriteStream();
      const meter = new Meter(s.maxBytes, () => tooLarge(finalUrl, s.maxBytes));
      // A failure destroys `res`, which makes the pipeline tear down the meter and the file stream.
      await pipeline(res, meter, file);
      if (t.failed) throw t.reason;
      const { mime, ext } = meter.sniffed();
      const finalPath = join(opts.tmpDir, `dl-${id}.${ext ?? 'bin'}`);
      await fsp.rename(partPath, finalPath);
      return { path: finalPath, bytes: meter.bytes, sha256: meter.sha256(), ...(mime ? { mime, ext } : {}) };
    } catch (err) {
      const error = t.error(err, finalUrl);
      if (created) await removeQuietly(partPath).catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Same checks as downloadToFile, but keeps the body in memory (for images); memory is bounded by
 * `maxBytes`.
 */
export async function downloadToBuffer(
  url: string,
  opts: Omit<DownloadOptions, 'tmpDir'>,
): Promise<{ data: Buffer; mime?: string; ext?: string }> {
  const s = settings(opts);
  return withTransfer(url, s, async (t) => {
    const { res, url: finalUrl } = await open(url, s, t);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    const meter = new Meter(s.maxBytes, () => tooLarge(finalUrl, s.maxBytes));
    try {
      await pipeline(res, meter, sink);
    } catch (err) {
      throw t.error(err, finalUrl);
    }
    if (t.failed) throw t.reason;
    const { mime, ext } = meter.sniffed();
    return { data: Buffer.concat(chunks, meter.bytes), ...(mime ? { mime, ext } : {}) };
  });
}

/** Deletes a file, ignoring a file that is already gone. */
export async function removeQuietly(path: string | undefined): Promise<void> {
  if (!path) return;
  try {
    await fsp.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Deletes download temp files (`dl-*`) in `tmpDir` last modified more than `olderThanMs` ago,
 * e.g. left behind by a worker that crashed mid-download. Returns how many were deleted; a missing
 * folder counts as empty.
 */
export async function sweepStaleTempFiles(tmpDir: string, olderThanMs: number): Promise<number> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(tmpDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.startsWith('dl-')) continue;
    const path = join(tmpDir, entry.name);
    try {
      const stat = await fsp.stat(path);
      if (stat.mtimeMs >= cutoff) continue;
      await fsp.unlink(path);
      removed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}
