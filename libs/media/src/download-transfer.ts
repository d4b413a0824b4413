import { MediaError } from './media-error';

/**
 * Messages a client may read about a download (URLs without credentials or query), and the
 * transfer: the first failure (abort, total or idle timeout, size cap) wins, destroys every live
 * socket and stream, and is what the download rejects with.
 */

/** Errors that say nothing about the server's answer to this request but about the local setup or a bad peer. */
const PERMANENT_ERROR_CODES = new Set(['ENOTFOUND', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST']);

export interface Destroyable {
  destroy(error?: Error): unknown;
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/** A URL as it may be shown to a client: no userinfo, no query string, no fragment, bounded length. */
export function safeUrl(url: URL): string {
  const text = `${url.protocol}//${url.host}${url.pathname}`;
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/** "1500 bytes" or "45.0 MB (47185920 bytes)". */
function size(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${(bytes / (1024 * 1024)).toFixed(1)} MB (${bytes} bytes)`;
}

export function article(word: string): string {
  return /^(?:[aeio]|un(?!i))/i.test(word) ? 'an' : 'a';
}

export function tooLarge(url: URL, maxBytes: number, declared?: number): MediaError {
  const what =
    declared === undefined
      ? `media at ${safeUrl(url)} is larger than the limit of ${size(maxBytes)}`
      : `media at ${safeUrl(url)} is ${size(declared)}, which exceeds the limit of ${size(maxBytes)}`;
  return new MediaError(what, 'media_too_large', false, { url: safeUrl(url), maxBytes, declaredBytes: declared });
}

export function abortError(): Error {
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

export class Transfer {
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
