import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import {
  BATCH_ID_PATTERN,
  BatchLineOutcome,
  BatchPendingLine,
  BatchStatus,
  batchStoppedError,
  BatchView,
  batchViewOf,
  ErrorDetail,
  ErrorType,
  GatewayError,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { isForbiddenAddress } from '@lib/media';
import { BatchLineValidator } from './batch-line-validator';
import { UnparsableLine } from './batch-line-reader';
import { BatchStore } from './batch-store';

/** Lines validated, then written to Redis, at a time (or fewer, past CHUNK_BYTES): what an upload holds in memory. */
const CHUNK_LINES = 500;
const CHUNK_BYTES = 8 * 1024 * 1024;
/** How long DELETE waits for a worker to settle the cancel before answering 202. */
const CANCEL_WAIT_MS = 5_000;
const CANCEL_POLL_MS = 50;
/** Largest `metadata`, as JSON (characters). */
const METADATA_MAX_CHARS = 16 * 1024;

export interface BatchOptions {
  callbackUrl?: unknown;
  metadata?: unknown;
  /** x-request-id of the upload: the lines' jobs carry it into the workers' logs. */
  requestId?: string;
}

/**
 * Batches: an upload's lines are validated one by one as they are read (a bad line is that
 * line's error) and kept in the batch; workers feed them to the provider queues a window at a
 * time, record each outcome, and finalize the batch (see apps/worker/src/batch-feeder.service.ts).
 */
@Injectable()
export class BatchesService {
  private readonly logger = new Logger(BatchesService.name);

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly store: BatchStore,
    private readonly validator: BatchLineValidator,
  ) {}

  /** Reads every line of `source` (a JSON array or an NDJSON stream), then answers with the batch. */
  async submit(source: AsyncIterable<unknown> | Iterable<unknown>, options: BatchOptions): Promise<BatchView> {
    const fields = this.checkOptions(options);
    const id = `batch_${randomBytes(12).toString('hex')}`;
    await this.store.create(id, { created_at: new Date().toISOString(), ...fields });
    let lines: number;
    try {
      lines = await this.upload(id, source, options.requestId);
    } catch (err) {
      const detail: ErrorDetail =
        err instanceof GatewayError ? err.toDetail() : { type: ErrorType.BadRequest, message: 'The upload broke off before its end', code: 'batch_upload_failed' };
      if (!(err instanceof GatewayError)) this.logger.warn(`batch ${id}: upload failed: ${(err as Error).message}`);
      await this.fail(id, detail);
      throw new GatewayError(detail.type, detail.message, detail.code, { ...detail.details, batch_id: id });
    }
    if (lines === 0) {
      const detail: ErrorDetail = { type: ErrorType.BadRequest, message: 'The batch has no request lines', code: 'batch_empty' };
      await this.fail(id, detail);
      throw new GatewayError(detail.type, detail.message, detail.code, { batch_id: id });
    }
    await this.store.endUpload(id);
    return this.view(id);
  }

  async view(id: string): Promise<BatchView> {
    return batchViewOf(await this.requireMeta(id));
  }

  /**
   * Marks the batch CANCELING; a worker then drops its lines that have not started (each gets a
   * `batch_canceled` error), lets running ones finish, and ends it CANCELED. `settled` is false
   * when that had not happened within CANCEL_WAIT_MS.
   */
  async cancel(id: string): Promise<{ view: BatchView; settled: boolean }> {
    await this.requireMeta(id);
    await this.store.stop(id, BatchStatus.Canceling);
    const deadline = Date.now() + CANCEL_WAIT_MS;
    for (;;) {
      const view = await this.view(id);
      if (view.status !== BatchStatus.Canceling || Date.now() >= deadline) return { view, settled: view.status !== BatchStatus.Canceling };
      await new Promise((r) => setTimeout(r, CANCEL_POLL_MS));
    }
  }

  /** The result lines so far, in input order (lines without an outcome yet are skipped). */
  async results(id: string): Promise<AsyncGenerator<string | Buffer>> {
    const view = await this.view(id);
    if (view.status === BatchStatus.Expired) {
      throw new GatewayError(ErrorType.NotFound, `The results of batch "${id}" have expired (BATCH_RETENTION_SECONDS)`, 'batch_expired', { batch_id: id });
    }
    return this.store.results(id, view.request_counts.total);
  }

  private async upload(id: string, source: AsyncIterable<unknown> | Iterable<unknown>, requestId?: string): Promise<number> {
    let index = 0;
    let chunk = { lines: 0, bytes: 0, valid: [] as Array<{ line: BatchPendingLine; json: string }>, outcomes: [] as BatchLineOutcome[] };
    const flush = async (): Promise<void> => {
      const { lines, valid, outcomes } = chunk;
      chunk = { lines: 0, bytes: 0, valid: [], outcomes: [] };
      if (lines === 0) return;
      if (!(await this.store.pushChunk(id, lines, valid.map((v) => v.json)))) {
        // Canceled (or failed) while uploading: the rest of the upload is read and answered, never run.
        const error = batchStoppedError((await this.store.meta(id))?.failing === '1' ? 'failed' : 'canceled');
        outcomes.push(...valid.map(({ line }) => ({ result: { custom_id: line.c, index: line.i, error } })));
      }
      await this.store.record(id, outcomes);
    };
    try {
      for await (const value of source) {
        if (index >= this.config.batchMaxLines) {
          throw new GatewayError(ErrorType.BadRequest, `A batch holds at most ${this.config.batchMaxLines} lines (BATCH_MAX_LINES)`, 'batch_too_large', {
            max_lines: this.config.batchMaxLines,
          });
        }
        const checked =
          value instanceof UnparsableLine
            ? { ok: false as const, customId: null, error: { type: ErrorType.BadRequest, message: value.message, code: 'invalid_json' } }
            : await this.validator.check(value, index, id, requestId);
        if (checked.ok) {
          const json = JSON.stringify(checked.line);
          chunk.valid.push({ line: checked.line, json });
          chunk.bytes += json.length;
        } else {
          chunk.outcomes.push({ result: { custom_id: checked.customId, index, error: checked.error } });
        }
        index++;
        chunk.lines++;
        if (chunk.lines >= CHUNK_LINES || chunk.bytes >= CHUNK_BYTES) await flush();
      }
    } catch (err) {
      // The lines read so far stay part of the (failed) batch, each with an outcome.
      await flush().catch(() => undefined);
      throw err;
    }
    await flush();
    return index;
  }

  /** The batch itself failed: lines not started are dropped by a worker, as on cancel. */
  private async fail(id: string, error: ErrorDetail): Promise<void> {
    await this.store.stop(id, BatchStatus.Failed, error);
    await this.store.endUpload(id);
  }

  private async requireMeta(id: string): Promise<Record<string, string>> {
    const meta = BATCH_ID_PATTERN.test(id) ? await this.store.meta(id) : undefined;
    if (!meta) {
      throw new GatewayError(ErrorType.NotFound, `No batch "${id}" (ended batches are kept for twice BATCH_RETENTION_SECONDS)`, 'batch_not_found', {
        batch_id: id,
      });
    }
    return meta;
  }

  /** callback_url and metadata, checked before anything is written. */
  private checkOptions(options: BatchOptions): Record<string, string> {
    const fields: Record<string, string> = {};
    if (options.callbackUrl !== undefined && options.callbackUrl !== null) {
      fields.callback_url = this.checkCallbackUrl(options.callbackUrl);
    }
    if (options.metadata !== undefined && options.metadata !== null) {
      const m = options.metadata;
      const json = typeof m === 'object' && !Array.isArray(m) ? JSON.stringify(m) : undefined;
      if (json === undefined || json.length > METADATA_MAX_CHARS) {
        throw badOption('metadata', `metadata must be a JSON object of at most ${METADATA_MAX_CHARS} characters`);
      }
      fields.metadata = json;
    }
    return fields;
  }

  /**
   * An http(s) URL without credentials. A literal address is judged here by the media URL policy
   * (MEDIA_ALLOW_PRIVATE_URLS); a host name is resolved and judged again when the callback is sent.
   */
  private checkCallbackUrl(value: unknown): string {
    if (!this.config.batchCallbackSecret) {
      throw new GatewayError(ErrorType.BadRequest, 'callback_url needs BATCH_CALLBACK_SECRET, which signs the callbacks; it is not set', 'callback_not_configured');
    }
    let url: URL;
    try {
      url = new URL(String(value));
    } catch {
      throw badOption('callback_url', 'callback_url must be an absolute http(s) URL');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || typeof value !== 'string') {
      throw badOption('callback_url', 'callback_url must be an http(s) URL without credentials');
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const forbidden = isIP(host) && !this.config.mediaAllowPrivateUrls ? isForbiddenAddress(host) : undefined;
    if (forbidden) throw new GatewayError(ErrorType.BadRequest, `callback_url points at a ${forbidden} address`, 'callback_url_forbidden');
    return url.toString();
  }
}

function badOption(field: string, message: string): GatewayError {
  return new GatewayError(ErrorType.BadRequest, message, 'invalid_batch', { field });
}
