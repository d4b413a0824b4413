import type * as dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { isForbiddenAddress } from './ip-policy';
import { article, safeUrl, tooLarge, Transfer } from './download-transfer';
import { MediaError } from './media-error';

/**
 * The HTTP side of safe-download.ts: the URL and address policy (checked on every hop,
 * connections pinned to the vetted addresses) and the request with its connect and idle timeouts.
 */

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'inference-gateway-media/1.0';

export type LookupAll = (
  hostname: string,
  options: { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[] | string, family?: number) => void,
) => void;

export interface Settings {
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

function request(url: URL, addresses: LookupAddress[], s: Settings, t: Transfer, extra: Record<string, string>): Promise<http.IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    const host = bareHost(url);
    const literal = isIP(host) !== 0;
    const options: https.RequestOptions = {
      method: 'GET',
      hostname: host,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: { 'user-agent': USER_AGENT, accept: '*/*', 'accept-encoding': 'identity', ...extra },
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
/** `headers`: extra request headers (Range, If-Range when resuming). */
export async function open(rawUrl: string, s: Settings, t: Transfer, headers: Record<string, string> = {}): Promise<{ res: http.IncomingMessage; url: URL }> {
  const original = parseUrl(rawUrl);
  let url = original;
  for (let redirects = 0; ; redirects++) {
    let res: http.IncomingMessage;
    try {
      const addresses = await resolve(url, original, s, t);
      res = await t.race(request(url, addresses, s, t, headers));
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
