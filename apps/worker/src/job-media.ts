import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ErrorType, GatewayError, isBlobRef } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { MediaBytes, MediaFile, MediaSource } from '@lib/providers';
import { downloadToBuffer, downloadToFile, removeQuietly, sniffMedia } from '@lib/media';
import { BlobStore } from '@lib/queue';

/**
 * The media inputs of one job run: inline base64, blob keys or URLs, made into bytes or temp
 * files on demand. URLs are fetched here, in the worker, through the safe downloader; temp
 * files are removed by `cleanup()` whatever the outcome.
 */
export class JobMedia implements MediaSource {
  private readonly files: string[] = [];
  /** One download per input: a file probed before the adapter runs is the file the adapter reads. */
  private readonly fetched = new Map<string, Promise<MediaFile>>();

  constructor(
    private readonly inputs: Record<string, unknown>,
    private readonly blobs: BlobStore,
    private readonly config: GatewayConfig,
    private readonly signal: AbortSignal,
  ) {}

  async bytes(input: string): Promise<MediaBytes> {
    const value = this.inputs[input];
    const fetched = this.fetched.get(input);
    if (fetched) {
      const file = await fetched;
      return { data: await readFile(file.path), mime: file.mime };
    }
    if (typeof value === 'string' && /_url$/.test(input)) {
      const got = await downloadToBuffer(value, this.downloadOptions());
      return { data: got.data, mime: got.mime ?? 'application/octet-stream' };
    }
    const data = await this.inline(input, value);
    return { data, mime: sniffMedia(data.subarray(0, 64))?.mime ?? 'application/octet-stream' };
  }

  /** `onProgress` hears the bytes downloaded so far (URL inputs). */
  file(input: string, onProgress?: (bytes: number) => void): Promise<MediaFile> {
    let file = this.fetched.get(input);
    if (!file) {
      file = this.fetch(input, onProgress);
      this.fetched.set(input, file);
      file.catch(() => this.fetched.delete(input));
    }
    return file;
  }

  private async fetch(input: string, onProgress?: (bytes: number) => void): Promise<MediaFile> {
    const value = this.inputs[input];
    if (typeof value === 'string' && /_url$/.test(input)) {
      const got = await downloadToFile(value, { ...this.downloadOptions(), tmpDir: this.config.mediaTmpDir, onProgress });
      this.files.push(got.path);
      return { path: got.path, size: got.bytes, mime: got.mime ?? 'application/octet-stream', ext: got.ext ?? 'bin' };
    }
    const data = await this.inline(input, value);
    const kind = sniffMedia(data.subarray(0, 64));
    await mkdir(this.config.mediaTmpDir, { recursive: true });
    const file = path.join(this.config.mediaTmpDir, `dl-${randomUUID()}.${kind?.ext ?? 'bin'}`);
    this.files.push(file);
    await writeFile(file, data);
    return { path: file, size: data.length, mime: kind?.mime ?? 'application/octet-stream', ext: kind?.ext ?? 'bin' };
  }

  async cleanup(): Promise<void> {
    this.fetched.clear();
    await Promise.all(this.files.splice(0).map((f) => removeQuietly(f)));
  }

  private async inline(input: string, value: unknown): Promise<Buffer> {
    if (isBlobRef(value)) {
      const data = await this.blobs.get(value);
      if (!data) {
        throw new GatewayError(ErrorType.BadRequest, `inputs.${input} expired before the job ran (kept JOB_RETENTION_SECONDS)`, 'media_expired');
      }
      return data;
    }
    if (typeof value === 'string') return Buffer.from(value, 'base64');
    throw new GatewayError(ErrorType.BadRequest, `inputs.${input} is missing`, 'media_missing');
  }

  private downloadOptions() {
    return {
      maxBytes: this.config.mediaMaxBytes,
      allowPrivate: this.config.mediaAllowPrivateUrls,
      totalTimeoutMs: this.config.mediaDownloadTimeoutMs,
      signal: this.signal,
    };
  }
}
