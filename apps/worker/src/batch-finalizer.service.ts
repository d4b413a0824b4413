import { Inject, Injectable, Logger } from '@nestjs/common';
import { BatchCallbackJobData, batchViewOf, FINALIZE } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { LuaScript } from '@lib/queue';
import { BatchCompactor } from './batch-compactor.service';
import { BatchQueues } from './batch-queues';

const FINALIZE_SCRIPT = new LuaScript(FINALIZE);

/**
 * Ends a settled batch (every line has an outcome): stamps its final status and finish time,
 * gives its keys their retention (results BATCH_RETENTION_SECONDS, the status twice that, so it
 * reads EXPIRED in between), queues its callback once, and takes it off the active list. Safe
 * to run twice, and run again by the feeder's walk if a worker died half-way.
 */
@Injectable()
export class BatchFinalizer {
  private readonly logger = new Logger(BatchFinalizer.name);

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly queues: BatchQueues,
    private readonly compactor: BatchCompactor,
  ) {}

  async finalize(id: string): Promise<void> {
    const { redis, keys } = this.queues;
    // The last page leaves Redis before the batch reads as ended; another worker at it: the feeder's walk retries.
    if ((await redis.hget(keys.meta(id), 'finalized')) !== '1' && !(await this.compactor.compact(id, true))) return;
    const retention = this.config.batchRetentionSeconds;
    const now = new Date();
    const expiresAt = new Date(now.getTime() + retention * 1000);
    await this.compactor.expire(id, expiresAt.getTime());
    await FINALIZE_SCRIPT.run(redis, [keys.meta(id), keys.results(id), keys.pending(id), keys.queued(id), keys.lock(id)], [now.toISOString(), String(retention), String(2 * retention), expiresAt.toISOString()]);
    const meta = await redis.hgetall(keys.meta(id));
    if (meta.finalized !== '1') return;
    if (meta.callback_url) {
      const data: BatchCallbackJobData = { url: meta.callback_url, batch: batchViewOf(meta) };
      // One job id per batch: a second finalize adds nothing, so the callback is sent once.
      await this.queues.callbacks().add('callback', data, {
        jobId: `callback-${id}`,
        attempts: this.config.batchCallbackAttempts,
        backoff: { type: 'exponential', delay: this.config.retryBaseDelayMs },
        removeOnComplete: { age: retention },
        removeOnFail: { age: retention },
        stackTraceLimit: 0,
      });
    }
    await redis.srem(keys.active(), id);
    this.logger.log(`batch ${id} ended ${meta.status}: ${meta.completed} completed, ${meta.failed} failed of ${meta.total}`);
  }
}
