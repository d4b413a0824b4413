import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';

/** A loopback HTTP server that serves test-made files by path; counts its hits. */
export class MediaServer {
  readonly hits = new Map<string, number>();
  private constructor(
    private readonly server: http.Server,
    private readonly files: Map<string, Buffer>,
  ) {}

  static async start(files: Record<string, Buffer>): Promise<MediaServer> {
    const map = new Map(Object.entries(files));
    let self: MediaServer;
    const server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      self.hits.set(path, (self.hits.get(path) ?? 0) + 1);
      const body = map.get(path);
      if (!body) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    });
    self = new MediaServer(server, map);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return self;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A valid 1x1 PNG; with `size`, padded after IEND to that many bytes (to cross the inline limit). */
export function tinyPng(size = 0): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
  const idat = zlib.deflateSync(Buffer.from([0, 255, 0, 0, 255]));
  const png = Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return size <= png.length ? png : Buffer.concat([png, Buffer.alloc(size - png.length, 0)]);
}

/** An MP3-looking file (ID3 header) of `size` bytes. */
export function fakeMp3(size: number): Buffer {
  const buf = Buffer.alloc(size, 0x55);
  Buffer.from('ID3', 'ascii').copy(buf, 0);
  buf[3] = 4;
  return buf;
}
