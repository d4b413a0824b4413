import { Inject, Injectable } from '@nestjs/common';
import {
  BATCH_RESULTS_PAGE,
  BatchKeys,
  BatchLineOutcome,
  batchResultPageKey,
  BatchStatus,
  ErrorDetail,
  RECORD_LINES,
  recordLinesArgs,
  STOP,
  unpackResultLine,
  UPLOAD_CHUNK,
  UPLOAD_END,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { LuaScript, REDIS, RedisClient } from '@lib/queue';
import { LocalDiskResultStore, ResultStore } from '@lib/cache';

const SCRIPTS = { uploadChunk: new LuaScript(UPLOAD_CHUNK), recordLines: new LuaScript(RECORD_LINES), uploadEnd: new LuaScript(UPLOAD_END), stop: new LuaScript(STOP) };

/** The API's reads and writes of batch state: Redis (layout: BatchKeys, scripts: batch-scripts) and result pages moved to BATCH_RESULTS_DIR. */
@Injectable()
export class BatchStore {
  readonly keys: BatchKeys;
  /** Result pages moved out of Redis (BATCH_RESULTS_DIR), if configured. */
  private readonly pages?: ResultStore;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(REDIS) readonly redis: RedisClient,
  ) {
    this.keys = new BatchKeys(config.queuePrefix);
    if (config.batchResultsDir) this.pages = new LocalDiskResultStore(config.batchResultsDir);
  }

  async create(id: string, fields: Record<string, string>): Promise<void> {
    await this.redis.hset(this.keys.meta(id), { id, status: BatchStatus.Validating, total: '0', completed: '0', failed: '0', ...fields });
    await this.redis.sadd(this.keys.active(), id);
  }

  async meta(id: string): Promise<Record<string, string> | undefined> {
    const meta = await this.redis.hgetall(this.keys.meta(id));
    return meta.id ? meta : undefined;
  }

  /** Counts `lines` more lines and queues the valid ones (JSON BatchPendingLine); false when the batch stopped meanwhile. */
  async pushChunk(id: string, lines: number, valid: string[]): Promise<boolean> {
    return (await SCRIPTS.uploadChunk.run(this.redis, [this.keys.meta(id), this.keys.pending(id)], [String(lines), ...valid])) === 1;
  }

  async record(id: string, outcomes: BatchLineOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await SCRIPTS.recordLines.run(this.redis, [this.keys.meta(id), this.keys.results(id), this.keys.queued(id), this.keys.pending(id)], recordLinesArgs(outcomes));
  }

  async endUpload(id: string): Promise<void> {
    await SCRIPTS.uploadEnd.run(this.redis, [this.keys.meta(id)], [new Date().toISOString()]);
  }

  /** CANCELING or FAILED; false when the batch had already settled or stopped. */
  async stop(id: string, status: BatchStatus.Canceling | BatchStatus.Failed, error?: ErrorDetail): Promise<boolean> {
    const now = new Date().toISOString();
    return (await SCRIPTS.stop.run(this.redis, [this.keys.meta(id)], [status, now, error ? JSON.stringify(error) : ''])) === 1;
  }

  /**
   * The recorded lines in input order, skipping lines without an outcome yet, page by page: a
   * page moved to BATCH_RESULTS_DIR is streamed from there, else read from Redis (and read from
   * the folder instead if it moved while it was being read).
   */
  async *results(id: string, total: number): AsyncGenerator<string | Buffer> {
    for (let page = 0; page * BATCH_RESULTS_PAGE < total; page++) {
      if ((await this.pagesMoved(id)) > page) {
        yield* this.movedPage(id, page);
        continue;
      }
      const from = page * BATCH_RESULTS_PAGE;
      const fields = Array.from({ length: Math.min(BATCH_RESULTS_PAGE, total - from) }, (_, k) => String(from + k));
      const lines = await this.redis.hmget(this.keys.results(id), ...fields);
      if ((await this.pagesMoved(id)) > page) {
        yield* this.movedPage(id, page);
        continue;
      }
      const found = lines.filter((l): l is string => l !== null).map(unpackResultLine);
      if (found.length > 0) yield `${found.join('\n')}\n`;
    }
  }

  private async pagesMoved(id: string): Promise<number> {
    if (!this.pages) return 0;
    return Number((await this.redis.hget(this.keys.meta(id), 'pages')) ?? 0);
  }

  private async *movedPage(id: string, page: number): AsyncGenerator<Buffer> {
    const stream = await this.pages!.stream(batchResultPageKey(id, page));
    if (!stream) throw new Error(`batch ${id}: result page ${page} is missing from BATCH_RESULTS_DIR`);
    for await (const chunk of stream) yield chunk as Buffer;
  }
}
