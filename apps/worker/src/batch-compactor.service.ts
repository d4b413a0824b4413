import { Inject, Injectable } from '@nestjs/common';
import { BATCH_RESULTS_PAGE, batchResultPageKey, unpackResultLine } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { LocalDiskResultStore, ResultStore } from '@lib/cache';
import { withBatchLock } from './batch-lock';
import { BatchQueues } from './batch-queues';

/**
 * With BATCH_RESULTS_DIR, moves a batch's results out of Redis a page (BATCH_RESULTS_PAGE lines,
 * aligned on the line index) at a time, as soon as every line of the page has its outcome, and
 * the last partial page when the batch ends; so Redis holds at most the pages still running,
 * whatever the batch's size. A page is written whole (ResultStore.put) before the batch's `pages`
 * counter moves past it and its lines leave Redis (together): a crash in between writes the same
 * page again.
 * Without BATCH_RESULTS_DIR it does nothing.
 */
@Injectable()
export class BatchCompactor {
  private readonly store?: ResultStore;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly queues: BatchQueues,
  ) {
    if (config.batchResultsDir) this.store = new LocalDiskResultStore(config.batchResultsDir);
  }

  get enabled(): boolean {
    return this.store !== undefined;
  }

  /**
   * Moves every finished page; with `final` (every line has its outcome) the last, partial one
   * too. Returns false when another worker held the batch's lock (nothing was done).
   */
  async compact(id: string, final: boolean): Promise<boolean> {
    const store = this.store;
    if (!store) return true;
    const { redis, keys } = this.queues;
    const done = await withBatchLock(redis, keys.lock(id), async () => {
      for (;;) {
        const [pages, totalRaw] = await redis.hmget(keys.meta(id), 'pages', 'total');
        const page = Number(pages ?? 0);
        const total = Number(totalRaw ?? 0);
        const from = page * BATCH_RESULTS_PAGE;
        const count = Math.min(BATCH_RESULTS_PAGE, total - from);
        if (count <= 0 || (count < BATCH_RESULTS_PAGE && !final)) return true;
        const fields = Array.from({ length: count }, (_, k) => String(from + k));
        const lines = await redis.hmget(keys.results(id), ...fields);
        if (lines.some((l) => l === null)) return true; // still running
        await store.put(batchResultPageKey(id, page), `${(lines as string[]).map(unpackResultLine).join('\n')}\n`);
        // The counter moves past the page and its lines leave Redis in one transaction (one hash
        // tag, so Cluster-safe): nobody sees the page counted as moved with its lines still here.
        const replies = await redis.multi().hset(keys.meta(id), 'pages', String(page + 1)).hdel(keys.results(id), ...fields).exec();
        const failed = replies?.find(([err]) => err);
        if (!replies || failed) throw failed?.[0] ?? new Error(`batch ${id}: moving page ${page} out of Redis was aborted`);
      }
    });
    return done === true;
  }

  /** After its retention, an ended batch's pages are deleted (Redis expires the rest by itself). */
  async expire(id: string, expiresAtMs: number): Promise<void> {
    if (this.store) await this.queues.redis.zadd(this.queues.keys.expiring(), expiresAtMs, id);
  }

  /** Deletes the pages of batches past their retention. */
  async sweep(now = Date.now()): Promise<void> {
    const store = this.store;
    if (!store) return;
    const { redis, keys } = this.queues;
    for (const id of await redis.zrangebyscore(keys.expiring(), 0, now)) {
      await store.delete(`batches/${id}`, { prefix: true });
      await redis.zrem(keys.expiring(), id);
    }
  }
}
