import { execFile } from 'node:child_process';
import { createReadStream, promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FFMPEG = process.env.FFMPEG_PATH || 'ffmpeg';

/** A fresh folder under the OS temp folder for generated media (never in the repo). */
export function mediaTmpDir(tag: string): Promise<string> {
  return fsp.mkdtemp(path.join(tmpdir(), `gw-media-${tag}-`));
}

async function ffmpeg(args: string[]): Promise<void> {
  await run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', ...args], { maxBuffer: 1024 * 1024 });
}

/**
 * Mono 16-bit WAV of tone bursts with a pause every `periodSec` (the last `gapSec` of each period
 * silent): speech-like on/off audio, with silences for the chunker to cut at. 8 kHz keeps a
 * 30-minute file at 27.5 MiB, over Whisper's 25 MiB.
 */
export async function toneWav(dir: string, name: string, seconds: number, opts: { rate?: number; periodSec?: number; gapSec?: number } = {}): Promise<string> {
  const { rate = 8000, periodSec = 7, gapSec = 1 } = opts;
  const out = path.join(dir, name);
  const expr = `0.5*sin(2*PI*(300+200*mod(floor(t/${periodSec}),4))*t)*lt(mod(t,${periodSec}),${periodSec - gapSec})`;
  await ffmpeg(['-f', 'lavfi', '-i', `aevalsrc='${expr}':s=${rate}:d=${seconds}`, '-ac', '1', '-c:a', 'pcm_s16le', out]);
  return out;
}

/** A test-pattern video, tiny and at a low frame rate so minutes of it are made in seconds; optional tone track. */
export async function testPatternVideo(
  dir: string,
  name: string,
  seconds: number,
  opts: { audio?: boolean; fps?: number; size?: string; faststart?: boolean } = {},
): Promise<string> {
  const { audio = false, fps = 2, size = '64x48', faststart = false } = opts;
  const out = path.join(dir, name);
  const inputs = ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${fps}:duration=${seconds}`];
  if (audio) inputs.push('-f', 'lavfi', '-i', `sine=f=440:sample_rate=8000:d=${seconds}`);
  await ffmpeg([...inputs, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', ...(audio ? ['-c:a', 'aac', '-shortest'] : []), ...(faststart ? ['-movflags', '+faststart'] : []), out]);
  return out;
}

/** The first `keep` share of a file's bytes: a truncated file whose header still promises the whole. */
export async function truncatedCopy(file: string, name: string, keep = 0.5): Promise<string> {
  const data = await fsp.readFile(file);
  const out = path.join(path.dirname(file), name);
  await fsp.writeFile(out, data.subarray(0, Math.floor(data.length * keep)));
  return out;
}

export interface FileServerOptions {
  /** Answer `Range` requests with 206 (default true). */
  ranges?: boolean;
  /** Cut the connection of the first GET of each path after this many bytes (a mid-stream disconnect). */
  dropAfterBytes?: number;
}

/**
 * A loopback HTTP server that streams files from disk by path (`/name` -> `<dir>/name`), with
 * or without Range support; `/status/404` and `/status/403` answer those statuses. Counts hits
 * and the bytes it sent.
 */
export class FileServer {
  readonly hits = new Map<string, number>();
  bytesSent = 0;

  private constructor(private readonly server: http.Server) {}

  static async start(dir: string, opts: FileServerOptions = {}): Promise<FileServer> {
    let self: FileServer;
    const server = http.createServer((req, res) => void self.serve(dir, opts, req, res));
    self = new FileServer(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return self;
  }

  private async serve(dir: string, opts: FileServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const hit = (this.hits.get(url) ?? 0) + 1;
    this.hits.set(url, hit);
    const status = /^\/status\/(\d{3})$/.exec(url);
    if (status) return void res.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end('no');
    const file = path.join(dir, path.basename(url));
    const stat = await fsp.stat(file).catch(() => undefined);
    if (!stat) return void res.writeHead(404).end('not found');
    let start = 0;
    let end = stat.size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', etag: `"${stat.size}-${Math.round(stat.mtimeMs)}"` };
    if (opts.ranges !== false) headers['accept-ranges'] = 'bytes';
    if (range && opts.ranges !== false && req.headers['if-range'] === headers.etag) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
      headers['content-range'] = `bytes ${start}-${end}/${stat.size}`;
    }
    headers['content-length'] = end - start + 1;
    res.writeHead(headers['content-range'] ? 206 : 200, headers);
    const drop = hit === 1 && opts.dropAfterBytes !== undefined ? opts.dropAfterBytes : undefined;
    const stream = createReadStream(file, { start, end: drop !== undefined ? Math.min(end, start + drop - 1) : end });
    stream.on('data', (chunk) => (this.bytesSent += chunk.length));
    stream.on('end', () => (drop !== undefined ? res.destroy() : res.end()));
    res.on('close', () => stream.destroy());
    stream.pipe(res, { end: false });
  }

  url(name: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${name}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
