import { createHash, Hash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, WriteStream } from 'node:fs';
import type * as http from 'node:http';
import * as dns from 'node:dns';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LookupAll, open, Settings } from './download-http';
import { abortError, safeUrl, tooLarge, Transfer } from './download-transfer';
import { MediaError } from './media-error';
import { sniffMedia } from './mime-sniff';
import { removeQuietly } from './temp-files';

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
  /** Called with the bytes received so far, at most once a second (downloadToFile only). */
  onProgress?: (bytes: number) => void;
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
/** Times one download asks the server for the rest of a body it cut short (HTTP Range). */
const MAX_RESUMES = 3;

/** What a Meter has seen so far; a resumed download starts its new Meter from the partial file's. */
interface MeterState {
  bytes: number;
  hash: Hash;
  head: Buffer;
}

class Meter extends Transform {
  bytes: number;
  private readonly hash: Hash;
  private head: Buffer;

  constructor(
    private readonly maxBytes: number,
    private readonly onTooLarge: () => MediaError,
    from: MeterState = { bytes: 0, hash: createHash('sha256'), head: Buffer.alloc(0) },
  ) {
    super();
    this.bytes = from.bytes;
    this.hash = from.hash;
    this.head = from.head;
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
      const onTooLarge = () => tooLarge(finalUrl, s.maxBytes);
      let meter = new Meter(s.maxBytes, onTooLarge);
      let file: WriteStream = handle.createWriteStream() as unknown as WriteStream;
      let body = res;
      const progress = opts.onProgress && setInterval(() => opts.onProgress!(meter.bytes), 1_000);
      try {
        for (let resumes = 0; ; resumes++) {
          try {
            // A failure destroys `body`, which makes the pipeline tear down the meter and the file stream.
            await pipeline(body, meter, file);
            break;
          } catch (err) {
            // Only a body the server cut short is resumed: never a cap, a timeout, an abort or a disk error.
            if (t.failed || err instanceof MediaError || body.complete || resumes >= MAX_RESUMES) throw err;
            const next = await resumeBody(finalUrl, res, file, partPath, s, t);
            if (!next) throw err;
            body = next.res;
            meter = new Meter(s.maxBytes, onTooLarge, next.state);
            file = createWriteStream(partPath, { flags: 'r+', start: next.state.bytes });
          }
        }
      } finally {
        clearInterval(progress);
      }
      opts.onProgress?.(meter.bytes);
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
 * Asks for the rest of a body the server cut short, when its first answer offered byte ranges
 * and named its version (a strong ETag or Last-Modified, sent as If-Range so that a changed file
 * is never stitched to the old one's start). The partial file is re-read for its hash and head,
 * so the result is the same as an uncut download. Undefined: the server cannot resume.
 */
async function resumeBody(
  url: URL,
  first: http.IncomingMessage,
  file: WriteStream,
  partPath: string,
  s: Settings,
  t: Transfer,
): Promise<{ res: http.IncomingMessage; state: MeterState } | undefined> {
  const etag = first.headers.etag;
  const version = etag && !etag.startsWith('W/') ? etag : first.headers['last-modified'];
  if (first.headers['accept-ranges'] !== 'bytes' || !version) return undefined;
  // Written bytes only: the stream's buffered rest was dropped by the failure.
  if (!file.closed) await new Promise<void>((r) => file.once('close', () => r()));
  const state: MeterState = { bytes: 0, hash: createHash('sha256'), head: Buffer.alloc(0) };
  for await (const chunk of createReadStream(partPath) as AsyncIterable<Buffer>) {
    state.bytes += chunk.length;
    state.hash.update(chunk);
    if (state.head.length < SNIFF_BYTES) state.head = Buffer.concat([state.head, chunk.subarray(0, SNIFF_BYTES - state.head.length)]);
  }
  if (state.bytes === 0) return undefined;
  const { res } = await open(url.href, s, t, { range: `bytes=${state.bytes}-`, 'if-range': version });
  if (res.statusCode === 206 && (res.headers['content-range'] ?? '').startsWith(`bytes ${state.bytes}-`)) return { res, state };
  t.release(res);
  return undefined;
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
