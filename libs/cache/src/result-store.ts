import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Where results too big to keep in Redis can go (a large batch's output): named objects that
 * grow by appends and are read back as streams. One interface, so that object storage can take
 * the place of the local disk; the local disk is the implementation here.
 */
export interface ResultStore {
  /** Adds bytes at the end of `key`, creating it. Appends to one key must not run concurrently. */
  append(key: string, data: Buffer | string): Promise<void>;
  /** Replaces `key` with `data`. */
  put(key: string, data: Buffer | string): Promise<void>;
  /** The bytes of `key`, or undefined if there is no such object. */
  get(key: string): Promise<Buffer | undefined>;
  /** A stream of `key` (from `start`, in bytes), or undefined if there is no such object. */
  stream(key: string, start?: number): Promise<Readable | undefined>;
  /** Size in bytes, or undefined. */
  size(key: string): Promise<number | undefined>;
  /** Removes `key`, and with `prefix: true` every key under `key/`. */
  delete(key: string, options?: { prefix?: boolean }): Promise<void>;
}

/** Keys are paths of [A-Za-z0-9_.-] segments separated by '/', never '.' or '..'. */
const KEY = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

/** A ResultStore in a folder of the local disk (one file per key). */
export class LocalDiskResultStore implements ResultStore {
  constructor(private readonly root: string) {}

  async append(key: string, data: Buffer | string): Promise<void> {
    const file = this.file(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.appendFile(file, data);
  }

  async put(key: string, data: Buffer | string): Promise<void> {
    const file = this.file(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Written aside and renamed: a reader never sees half an object.
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  }

  async get(key: string): Promise<Buffer | undefined> {
    return fs.readFile(this.file(key)).catch(missing);
  }

  async stream(key: string, start = 0): Promise<Readable | undefined> {
    const file = this.file(key);
    if ((await fs.stat(file).catch(missing)) === undefined) return undefined;
    return createReadStream(file, { start });
  }

  async size(key: string): Promise<number | undefined> {
    return (await fs.stat(this.file(key)).catch(missing))?.size;
  }

  async delete(key: string, options: { prefix?: boolean } = {}): Promise<void> {
    await fs.rm(this.file(key), { force: true });
    if (options.prefix) await fs.rm(path.join(this.root, key), { recursive: true, force: true });
  }

  private file(key: string): string {
    if (!KEY.test(key)) throw new Error(`invalid result key "${key}"`);
    // A key and its prefix folder live side by side: "b1" is b1.bin, "b1/x" is b1/x.bin.
    return path.join(this.root, `${key}.bin`);
  }
}

function missing(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}
