import { createHash, randomBytes } from 'node:crypto';
import type * as dns from 'node:dns';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as tls from 'node:tls';
import { dirname, join } from 'node:path';
import { MediaError } from './media-error';
import { DownloadOptions, downloadToBuffer, downloadToFile } from './safe-download';
import { removeQuietly, sweepStaleTempFiles } from './temp-files';

// ------------------------------------------------------------------------------------------------
// Safety net: these tests must never open a connection to anything but loopback. Every socket
// connect is checked; a non-loopback target is recorded and the socket fails instead of connecting.
// ------------------------------------------------------------------------------------------------

const nonLoopbackAttempts: string[] = [];
const realConnect = net.Socket.prototype.connect;
const isLoopback = (address: string): boolean => address === '::1' || address.startsWith('127.');

type AnyLookup = (hostname: string, options: dns.LookupOptions, cb: (...args: unknown[]) => void) => void;

function installConnectGuard(): void {
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    const options = (Array.isArray(first) ? first[0] : first) as (Omit<net.TcpNetConnectOpts, 'lookup'> & { lookup?: AnyLookup }) | undefined;
    if (options && typeof options === 'object' && options.port !== undefined) {
      const host = options.host ?? 'localhost';
      if (net.isIP(host) !== 0 && !isLoopback(host)) {
        nonLoopbackAttempts.push(host);
        process.nextTick(() => this.destroy(new Error(`test guard: refused to connect to ${host}`)));
        return this;
      }
      const lookup = options.lookup;
      if (net.isIP(host) === 0 && lookup) {
        options.lookup = ((hostname, lookupOptions, cb) =>
          lookup(hostname, lookupOptions, (err: unknown, address: unknown, family: unknown) => {
            const list = Array.isArray(address) ? (address as dns.LookupAddress[]).map((a) => a.address) : [address as string];
            const bad = list.filter((a) => typeof a === 'string' && !isLoopback(a));
            if (!err && bad.length > 0) {
              nonLoopbackAttempts.push(...bad);
              return cb(new Error(`test guard: refused to connect to ${bad.join(', ')}`));
            }
            cb(err, address, family);
          })) as AnyLookup;
      }
    }
    return (realConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
}

// ------------------------------------------------------------------------------------------------
// Local test server
// ------------------------------------------------------------------------------------------------

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const BIG_PNG = Buffer.concat([PNG_MAGIC, randomBytes(5 * 1024 * 1024 - PNG_MAGIC.length)]);
const SMALL_GIF = Buffer.concat([Buffer.from('GIF89a', 'latin1'), randomBytes(2000)]);
const TEXT = Buffer.from('just some text, not media\n'.repeat(100));
const MB = 1024 * 1024;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let server: http.Server;
let port: number;
let base: string;
let deadPort: number;
let hits: string[] = [];
/** Range and If-Range headers the resumable endpoints received. */
let ranges: string[] = [];
/** A PNG-headed body of 100 000 bytes, for the resume tests. */
const BIG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(100_000 - 8)]);
let hostHeaders: string[] = [];
let endless: { sent: number; closed: Promise<void> } | undefined;

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://local');
  hits.push(url.pathname);
  hostHeaders.push(req.headers.host ?? '');
  const status = /^\/status\/(\d+)$/.exec(url.pathname);
  if (status) {
    res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
    res.end('nope');
    return;
  }
  switch (url.pathname) {
    case '/big.png':
      // the declared type is a lie on purpose: it must not be trusted
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': BIG_PNG.length });
      res.end(BIG_PNG);
      return;
    case '/small.gif':
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(SMALL_GIF);
      return;
    case '/text':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': TEXT.length });
      res.end(TEXT);
      return;
    case '/echo-host':
      res.writeHead(200);
      res.end(req.headers.host ?? '');
      return;
    case '/declared-huge':
      res.writeHead(200, { 'content-length': 100 * MB });
      res.write(Buffer.alloc(64 * 1024)); // then stall: the client must not wait for more
      return;
    case '/endless': {
      // chunked (no Content-Length), 64 MB if nobody stops it
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const state = { sent: 0, closed: new Promise<void>((r) => res.once('close', () => r())) };
      endless = state;
      const chunk = randomBytes(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && state.sent < 64 * MB) {
          state.sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      pump();
      return;
    }
    case '/redirect':
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' });
      res.end();
      return;
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      res.end();
      return;
    case '/stall-body':
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.from(PNG_MAGIC));
      return;
    case '/stall-headers':
      return; // never answers
    case '/drip': {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 40);
      res.once('close', () => clearInterval(timer));
      return;
    }
    case '/resumable':
    case '/resumable-no-version': {
      // The first answer is cut after 40 000 bytes; a Range request gets the rest (206).
      ranges.push(String(req.headers.range ?? '') + '|' + String(req.headers['if-range'] ?? ''));
      const version = url.pathname === '/resumable' ? { etag: '"v1"' } : {};
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && req.headers['if-range'] === '"v1"') {
        const from = Number(m[1]);
        res.writeHead(206, { 'accept-ranges': 'bytes', ...version, 'content-range': `bytes ${from}-${BIG.length - 1}/${BIG.length}`, 'content-length': BIG.length - from });
        res.end(BIG.subarray(from));
        return;
      }
      res.writeHead(200, { 'accept-ranges': 'bytes', ...version, 'content-length': BIG.length });
      res.write(BIG.subarray(0, 40_000), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    case '/cut':
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(Buffer.alloc(1000, 1), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    default:
      res.writeHead(404);
      res.end();
  }
}

function fakeLookup(table: Record<string, string[]>, calls: string[] = []): typeof dns.lookup {
  const lookup = (hostname: string, _options: unknown, callback: (...args: unknown[]) => void): void => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (!addresses) {
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return process.nextTick(callback, err);
    }
    process.nextTick(
      callback,
      null,
      addresses.map((address) => ({ address, family: net.isIP(address) })),
    );
  };
  return lookup as unknown as typeof dns.lookup;
}

let root: string;
let tmpDir: string;

function options(overrides: Partial<DownloadOptions> = {}): DownloadOptions {
  return { maxBytes: 10 * MB, allowPrivate: true, tmpDir, totalTimeoutMs: 5000, idleTimeoutMs: 2000, ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function mediaError(promise: Promise<unknown>, code: MediaError['code']): Promise<MediaError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(MediaError);
  expect((err as MediaError).code).toBe(code);
  return err as MediaError;
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

beforeAll(async () => {
  installConnectGuard();
  server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  deadPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  root = await mkdtemp(join(tmpdir(), 'media-spec-'));
});

afterAll(async () => {
  net.Socket.prototype.connect = realConnect;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  hits = [];
  hostHeaders = [];
  endless = undefined;
  tmpDir = join(await mkdtemp(join(root, 't-')), 'nested', 'downloads');
});

afterEach(() => {
  // splice, so one offending test does not fail all the following ones
  expect(nonLoopbackAttempts.splice(0)).toEqual([]);
});

// ------------------------------------------------------------------------------------------------

describe('downloadToFile', () => {
  it('streams a 5 MB file to a temp file with the right size, hash and sniffed type', async () => {
    const file = await downloadToFile(`${base}/big.png`, options());
    expect(file.bytes).toBe(BIG_PNG.length);
    expect(file.sha256).toBe(sha256(BIG_PNG));
    expect(file.mime).toBe('image/png'); // sniffed, not the server's text/html
    expect(file.ext).toBe('png');
    expect(dirname(file.path)).toBe(tmpDir); // created recursively
    expect(file.path).toMatch(/[/\\]dl-[0-9a-f]+\.png$/);
    expect((await readFile(file.path)).equals(BIG_PNG)).toBe(true);
    expect(await filesIn(tmpDir)).toEqual([file.path.slice(tmpDir.length + 1)]); // no .part left behind
  });

  it('names a file it cannot identify .bin and leaves mime undefined', async () => {
    const file = await downloadToFile(`${base}/text`, options());
    expect(file.path).toMatch(/\.bin$/);
    expect(file.mime).toBeUndefined();
    expect(file.ext).toBeUndefined();
    expect(file.bytes).toBe(TEXT.length);
  });

  it('refuses a declared Content-Length over the cap before reading the body', async () => {
    const started = Date.now();
    const err = await mediaError(downloadToFile(`${base}/declared-huge`, options({ maxBytes: MB })), 'media_too_large');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(String(100 * MB));
    expect(err.message).toContain(String(MB));
    expect(Date.now() - started).toBeLessThan(1000); // did not wait for the (stalled) body
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('aborts a chunked body as soon as it exceeds the cap and deletes the partial file', async () => {
    const err = await mediaError(downloadToFile(`${base}/endless`, options({ maxBytes: MB })), 'media_too_large');
    expect(err.message).toContain(String(MB));
    expect(await filesIn(tmpDir)).toEqual([]);
    expect(endless).toBeDefined();
    await endless!.closed; // the server saw the connection go away...
    expect(endless!.sent).toBeLessThan(32 * MB); // ...long before it sent its 64 MB
  });

  it('refuses loopback when private URLs are not allowed, without connecting', async () => {
    const err = await mediaError(downloadToFile(`${base}/big.png`, options({ allowPrivate: false })), 'url_not_allowed');
    expect(err.message).toBe(
      `media URL ${base}/big.png resolves to a loopback address (127.0.0.1), which is not allowed; ` +
        'set MEDIA_ALLOW_PRIVATE_URLS=true to allow it',
    );
    expect(err.retryable).toBe(false);
    expect(hits).toEqual([]);
  });

  it.each([
    ['private', 'internal.test', '10.0.0.5'],
    ['cloud metadata', 'metadata.test', '169.254.169.254'],
    ['unique-local', 'v6.test', 'fd12::1'],
  ])('refuses a hostname resolving to a %s address without connecting', async (reason, host, address) => {
    const calls: string[] = [];
    const lookup = fakeLookup({ [host]: [address] }, calls);
    const err = await mediaError(
      downloadToFile(`http://${host}:${port}/big.png?token=s3cret`, options({ allowPrivate: false, lookup })),
      'url_not_allowed',
    );
    expect(err.message).toContain(`${reason} address (${address})`);
    expect(err.message).toContain('MEDIA_ALLOW_PRIVATE_URLS');
    expect(err.message).not.toContain('s3cret');
    expect(calls).toEqual([host]);
    expect(hits).toEqual([]);
  });

  it('refuses a hostname if any of its addresses is forbidden', async () => {
    const lookup = fakeLookup({ 'mixed.test': ['127.0.0.1', '10.0.0.5'] });
    const err = await mediaError(
      downloadToFile(`http://mixed.test:${port}/big.png`, options({ allowPrivate: false, lookup, _allowAddress: (ip) => ip === '127.0.0.1' })),
      'url_not_allowed',
    );
    expect(err.message).toContain('private address (10.0.0.5)');
    expect(hits).toEqual([]);
  });

  it.each(['http://10.0.0.5:8080/x', 'http://169.254.169.254/latest/meta-data/', 'http://[::ffff:169.254.169.254]/', 'http://[::1]/', 'http://0x7f.1/', 'https://192.168.0.1/'])(
    'refuses the literal address in %s',
    async (url) => {
      const err = await mediaError(downloadToFile(url, options({ allowPrivate: false })), 'url_not_allowed');
      expect(err.message).toContain('MEDIA_ALLOW_PRIVATE_URLS');
    },
  );

  it('connects to exactly the address it checked (no second DNS lookup to rebind)', async () => {
    const calls: string[] = [];
    let n = 0;
    const lookup = ((hostname: string, opts: unknown, cb: (...args: unknown[]) => void) => {
      calls.push(hostname);
      // first answer passes the check; any later lookup would get a private address
      const address = n++ === 0 ? '127.0.0.1' : '10.0.0.5';
      process.nextTick(cb, null, [{ address, family: 4 }]);
    }) as unknown as typeof dns.lookup;
    const result = await downloadToBuffer(`http://rebind.test:${port}/echo-host`, {
      maxBytes: MB,
      allowPrivate: false,
      totalTimeoutMs: 5000,
      lookup,
      _allowAddress: (ip) => ip === '127.0.0.1',
    });
    expect(calls).toEqual(['rebind.test']);
    expect(result.data.toString()).toBe(`rebind.test:${port}`); // Host header keeps the original name
  });

  it.each([
    ['ftp://example.com/file.png', 'scheme "ftp"'],
    ['file:///etc/passwd', 'scheme "file"'],
    ['data:image/png;base64,iVBORw0KGgo=', 'scheme "data"'],
    ['gopher://127.0.0.1:70/', 'scheme "gopher"'],
    ['not a url', 'not a valid absolute URL'],
    ['/relative/path.png', 'not a valid absolute URL'],
  ])('refuses %s', async (url, text) => {
    const err = await mediaError(downloadToFile(url, options()), 'url_not_allowed');
    expect(err.message).toContain(text);
  });

  it('refuses credentials in the URL without printing them', async () => {
    const err = await mediaError(
      downloadToFile(`http://alice:hunter2@127.0.0.1:${port}/big.png?sig=abc`, options()),
      'url_not_allowed',
    );
    expect(err.message).toContain('credentials');
    expect(err.message).not.toMatch(/alice|hunter2|sig=abc/);
    expect(hits).toEqual([]);
  });

  it('follows a relative redirect', async () => {
    const file = await downloadToFile(`${base}/redirect?status=301&to=/big.png`, options());
    expect(file.sha256).toBe(sha256(BIG_PNG));
    expect(hits).toEqual(['/redirect', '/big.png']);
  });

  it.each([301, 302, 303, 307, 308])('follows a %i redirect', async (status) => {
    const result = await downloadToBuffer(`${base}/redirect?status=${status}&to=${encodeURIComponent(`${base}/small.gif`)}`, options());
    expect(result.data.equals(SMALL_GIF)).toBe(true);
    expect(result.mime).toBe('image/gif');
  });

  it('refuses a redirect from an allowed server to a private address', async () => {
    const allow = { allowPrivate: false, _allowAddress: (ip: string) => ip === '127.0.0.1' };
    const err = await mediaError(
      downloadToFile(`${base}/redirect?to=${encodeURIComponent('http://10.0.0.5/admin?key=zzz')}`, options(allow)),
      'url_not_allowed',
    );
    expect(err.message).toContain('http://10.0.0.5/admin');
    expect(err.message).toContain(`redirected from ${base}/redirect`);
    expect(err.message).toContain('private address (10.0.0.5)');
    expect(err.message).not.toContain('zzz');
    expect(hits).toEqual(['/redirect']);
  });

  it('refuses a redirect to a hostname that resolves to the metadata service', async () => {
    const lookup = fakeLookup({ 'metadata.test': ['169.254.169.254'] });
    const allow = { allowPrivate: false, lookup, _allowAddress: (ip: string) => ip === '127.0.0.1' };
    const err = await mediaError(
      downloadToFile(`${base}/redirect?to=${encodeURIComponent('http://metadata.test/latest/meta-data/')}`, options(allow)),
      'url_not_allowed',
    );
    expect(err.message).toContain('cloud metadata address (169.254.169.254)');
    expect(hits).toEqual(['/redirect']);
  });

  it('refuses a redirect to a non-http scheme', async () => {
    const err = await mediaError(downloadToFile(`${base}/redirect?to=${encodeURIComponent('file:///etc/passwd')}`, options()), 'url_not_allowed');
    expect(err.message).toContain('scheme "file"');
  });

  it('gives up on a redirect loop after maxRedirects', async () => {
    const err = await mediaError(downloadToFile(`${base}/loop`, options({ maxRedirects: 3 })), 'media_download_failed');
    expect(err.message).toContain('more than 3 times');
    expect(err.retryable).toBe(false);
    expect(hits).toEqual(['/loop', '/loop', '/loop', '/loop']);
  });

  it.each([
    [404, false],
    [403, false],
    [429, true],
    [500, true],
    [503, true],
  ])('reports HTTP %i as media_download_failed (retryable: %s)', async (status, retryable) => {
    const err = await mediaError(downloadToFile(`${base}/status/${status}`, options()), 'media_download_failed');
    expect(err.message).toContain(`HTTP ${status}`);
    expect(err.retryable).toBe(retryable);
    expect(err.details?.status).toBe(status);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('times out when the body stalls, and deletes the partial file', async () => {
    const started = Date.now();
    const err = await mediaError(downloadToFile(`${base}/stall-body`, options({ idleTimeoutMs: 300 })), 'media_download_timeout');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('no data for 300 ms');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('times out when the server never answers', async () => {
    const err = await mediaError(downloadToFile(`${base}/stall-headers`, options({ idleTimeoutMs: 300 })), 'media_download_timeout');
    expect(err.retryable).toBe(true);
  });

  it('enforces the total timeout even while bytes keep trickling in', async () => {
    const started = Date.now();
    const err = await mediaError(
      downloadToFile(`${base}/drip`, options({ idleTimeoutMs: 1000, totalTimeoutMs: 400 })),
      'media_download_timeout',
    );
    expect(err.message).toContain('took longer than 400 ms');
    expect(err.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('rejects with the abort reason and deletes the partial file when the signal fires', async () => {
    const controller = new AbortController();
    const reason = new Error('job cancelled');
    setTimeout(() => controller.abort(reason), 150);
    const err = await rejection(downloadToFile(`${base}/stall-body`, options({ signal: controller.signal })));
    expect(err).toBe(reason);
    expect(hits).toEqual(['/stall-body']);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('rejects at once with an AbortError for an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const err = await rejection(downloadToFile(`${base}/big.png`, options({ signal: controller.signal })));
    expect((err as Error).name).toBe('AbortError');
    expect(hits).toEqual([]);
  });

  it('reports a refused connection as a retryable failure', async () => {
    const err = await mediaError(downloadToFile(`http://127.0.0.1:${deadPort}/x`, options()), 'media_download_failed');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('resumes a body cut mid-way with Range and If-Range: the file and its hash are the whole body', async () => {
    ranges = [];
    const got = await downloadToFile(`${base}/resumable`, options());
    expect(ranges).toEqual(['|', 'bytes=40000-|"v1"']);
    expect(got.bytes).toBe(BIG.length);
    expect(got.sha256).toBe(createHash('sha256').update(BIG).digest('hex'));
    expect(got.mime).toBe('image/png');
    expect((await readFile(got.path)).equals(BIG)).toBe(true);
    await rm(got.path);
  });

  it('does not resume a body whose version the server does not name (no ETag or Last-Modified)', async () => {
    ranges = [];
    const err = await mediaError(downloadToFile(`${base}/resumable-no-version`, options()), 'media_download_failed');
    expect(err.retryable).toBe(true);
    expect(ranges).toEqual(['|']);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('reports a connection cut mid-body as a retryable failure and deletes the partial file', async () => {
    const err = await mediaError(downloadToFile(`${base}/cut`, options()), 'media_download_failed');
    expect(err.retryable).toBe(true);
    expect(await filesIn(tmpDir)).toEqual([]);
  });

  it('reports an unknown host as a non-retryable failure', async () => {
    const err = await mediaError(
      downloadToFile('http://nowhere.test/x.png', options({ lookup: fakeLookup({}) })),
      'media_download_failed',
    );
    expect(err.message).toContain('ENOTFOUND');
    expect(err.retryable).toBe(false);
  });
});

// Throwaway self-signed certificate for "media.test", generated for these tests only.
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkbwWIuL4H+mFiDYi
RX+RxHyl2d16xZ1cVNtz6MV/rtOhRANCAATuuBTPkPRDDWiPh824hpt96eAvE1oy
9denYABWGFPn8BNqAm9QWuIg+t4vP8t36w917rsVwS70L/ejt7qAIk3T
-----END PRIVATE KEY-----`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmDCCAT6gAwIBAgIUdQ1X6X1lPaXkjsGxDU+Rggyd5L8wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKbWVkaWEudGVzdDAgFw0yNjExMjYwMjM1NDFaGA8yMTI2MTEw
MjAyMzU0MVowFTETMBEGA1UEAwwKbWVkaWEudGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABO64FM+Q9EMNaI+HzbiGm33p4C8TWjL116dgAFYYU+fwE2oCb1Ba
4iD63i8/y3frD3XuuxXBLvQv96O3uoAiTdOjajBoMB0GA1UdDgQWBBRkqbUNYR7z
eASqBIrj/5hM3GQ0ajAfBgNVHSMEGDAWgBRkqbUNYR7zeASqBIrj/5hM3GQ0ajAP
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCm1lZGlhLnRlc3QwCgYIKoZIzj0E
AwIDSAAwRQIgC7YezDJYPYn2bCaZzWnfYX+dDMrYe1bt+c3lEN2g2AgCIQDv4MuS
F5rUTy5hSHZ44xddzwiuluuOGBuwASyJ+SOPrg==
-----END CERTIFICATE-----`;

describe('https', () => {
  it('pins the vetted address but keeps the original hostname for SNI, and treats a bad certificate as permanent', async () => {
    const servernames: string[] = [];
    const context = tls.createSecureContext({ key: TEST_KEY, cert: TEST_CERT });
    const tlsServer = https.createServer(
      {
        key: TEST_KEY,
        cert: TEST_CERT,
        SNICallback: (servername, cb) => {
          servernames.push(servername);
          cb(null, context);
        },
      },
      (_req, res) => res.end('ok'),
    );
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    try {
      const tlsPort = (tlsServer.address() as net.AddressInfo).port;
      const calls: string[] = [];
      const lookup = fakeLookup({ 'media.test': ['127.0.0.1'] }, calls);
      const err = await mediaError(
        downloadToFile(`https://media.test:${tlsPort}/a.png`, options({ lookup })),
        'media_download_failed',
      );
      expect(servernames).toEqual(['media.test']);
      expect(calls).toEqual(['media.test']);
      expect(err.message).toContain('SELF_SIGNED');
      expect(err.retryable).toBe(false);
    } finally {
      tlsServer.closeAllConnections();
      await new Promise((r) => tlsServer.close(r));
    }
  });
});

describe('downloadToBuffer', () => {
  it('returns the body and its sniffed type', async () => {
    const result = await downloadToBuffer(`${base}/small.gif`, { maxBytes: MB, allowPrivate: true, totalTimeoutMs: 5000 });
    expect(result.data.equals(SMALL_GIF)).toBe(true);
    expect(result.mime).toBe('image/gif');
    expect(result.ext).toBe('gif');
  });

  it('applies the same address policy', async () => {
    const err = await mediaError(
      downloadToBuffer(`${base}/small.gif`, { maxBytes: MB, allowPrivate: false, totalTimeoutMs: 5000 }),
      'url_not_allowed',
    );
    expect(err.message).toContain('loopback');
    expect(hits).toEqual([]);
  });

  it('stops a body over the cap', async () => {
    await mediaError(downloadToBuffer(`${base}/endless`, { maxBytes: MB, allowPrivate: true, totalTimeoutMs: 5000 }), 'media_too_large');
    await endless!.closed;
    expect(endless!.sent).toBeLessThan(32 * MB);
  });

  it('refuses a declared Content-Length over the cap', async () => {
    await mediaError(downloadToBuffer(`${base}/big.png`, { maxBytes: MB, allowPrivate: true, totalTimeoutMs: 5000 }), 'media_too_large');
  });
});

describe('temp file housekeeping', () => {
  it('removeQuietly deletes a file and ignores a missing one or undefined', async () => {
    await mkdir(tmpDir, { recursive: true });
    const path = join(tmpDir, 'dl-x.bin');
    await writeFile(path, 'x');
    await removeQuietly(path);
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(removeQuietly(path)).resolves.toBeUndefined();
    await expect(removeQuietly(undefined)).resolves.toBeUndefined();
  });

  it('sweepStaleTempFiles deletes only old dl-* files', async () => {
    await mkdir(join(tmpDir, 'dl-a-directory'), { recursive: true });
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    for (const name of ['dl-old.part', 'dl-old2.png', 'other-old.txt', 'dl-fresh.part']) {
      await writeFile(join(tmpDir, name), name);
      if (name.includes('old')) await utimes(join(tmpDir, name), old, old);
    }
    await utimes(join(tmpDir, 'dl-a-directory'), old, old);
    expect(await sweepStaleTempFiles(tmpDir, 60 * 60 * 1000)).toBe(2);
    expect((await readdir(tmpDir)).sort()).toEqual(['dl-a-directory', 'dl-fresh.part', 'other-old.txt']);
  });

  it('sweepStaleTempFiles returns 0 for a missing folder', async () => {
    expect(await sweepStaleTempFiles(join(tmpDir, 'does-not-exist'), 0)).toBe(0);
  });
});
