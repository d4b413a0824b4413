import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CANCELED_FAILURE, CompletionNotice, decodeFailure, JobFailure, queueOfJobId, RawInferenceResponse, unpackResult } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { duplicateRedis, REDIS, RedisClient, RedisKeys } from '@lib/queue';

export type WaitOutcome =
  | { kind: 'completed'; result: RawInferenceResponse }
  | { kind: 'failed'; failure: JobFailure | undefined }
  | { kind: 'timeout' };

interface Waiter {
  resolve(outcome: WaitOutcome): void;
  promise: Promise<WaitOutcome>;
  timer: NodeJS.Timeout;
  since: number;
}

export interface PendingWait {
  promise: Promise<WaitOutcome>;
  /** Stop waiting (e.g. the enqueue failed). */
  cancel(): void;
}

/**
 * One completion listener per API process (not `waitUntilFinished` per request): workers
 * publish a notice on this process's channel when a job it waits for ends, and a bounded map
 * routes it to the waiting request. A notice can be lost (subscriber reconnecting, worker
 * killed between completing and publishing), so a sweeper re-reads the jobs of waiters older
 * than SYNC_SWEEP_INTERVAL_MS from Redis: a result is never lost, only late.
 */
@Injectable()
export class SyncWaiter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SyncWaiter.name);
  readonly channel: string;
  private readonly waiters = new Map<string, Waiter>();
  private subscriber?: RedisClient;
  private sweepTimer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    this.channel = keys.notifyChannel(randomUUID());
  }

  async onModuleInit(): Promise<void> {
    const subscriber = duplicateRedis(this.redis, 'api-notify');
    this.subscriber = subscriber;
    subscriber.on('error', (err) => this.logger.warn(`notice subscriber: ${err.message}`));
    subscriber.on('message', (_channel: string, message: string) => this.onNotice(message));
    // After a reconnect ioredis resubscribes by itself; notices sent meanwhile are re-read.
    subscriber.on('ready', () => void this.sweep(0));
    await subscriber.subscribe(this.channel);
    this.sweepTimer = setInterval(() => void this.sweep(this.config.syncSweepIntervalMs), this.config.syncSweepIntervalMs);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const [id] of this.waiters) this.settle(id, { kind: 'timeout' });
    this.subscriber?.disconnect();
  }

  get size(): number {
    return this.waiters.size;
  }

  hasRoom(): boolean {
    return this.waiters.size < this.config.syncMaxWaiters;
  }

  /** Register before the job is enqueued, so that no notice can arrive before its waiter. */
  register(jobId: string, timeoutMs: number): PendingWait {
    const first = this.waiters.get(jobId);
    if (first) return this.share(first, timeoutMs);
    let resolve!: (o: WaitOutcome) => void;
    const promise = new Promise<WaitOutcome>((r) => (resolve = r));
    const timer = setTimeout(() => this.settle(jobId, { kind: 'timeout' }), timeoutMs);
    this.waiters.set(jobId, { resolve, promise, timer, since: Date.now() });
    return { promise, cancel: () => this.settle(jobId, { kind: 'timeout' }) };
  }

  /** A second client of the same job (an Idempotency-Key replay) hears the first one's outcome, within its own wait. */
  private share(first: Waiter, timeoutMs: number): PendingWait {
    let stop!: () => void;
    const timeout = new Promise<WaitOutcome>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
      stop = () => {
        clearTimeout(timer);
        resolve({ kind: 'timeout' });
      };
    });
    const promise = Promise.race([first.promise, timeout]);
    void promise.then(stop);
    return { promise, cancel: stop };
  }

  private settle(jobId: string, outcome: WaitOutcome): void {
    const waiter = this.waiters.get(jobId);
    if (!waiter) return;
    this.waiters.delete(jobId);
    clearTimeout(waiter.timer);
    waiter.resolve(outcome);
  }

  private onNotice(message: string): void {
    let notice: CompletionNotice;
    try {
      notice = JSON.parse(message) as CompletionNotice;
    } catch {
      return;
    }
    if (!this.waiters.has(notice.id)) return;
    if (notice.state === 'failed') return this.settle(notice.id, { kind: 'failed', failure: notice.failure });
    if (notice.result) return this.settle(notice.id, { kind: 'completed', result: unpackResult(notice.result) });
    // Large results are not sent in the notice: read the job's stored return value.
    void this.readFinished([notice.id]);
  }

  /** Re-reads the jobs of waiters older than `minAgeMs`, settling those that have ended. */
  private async sweep(minAgeMs: number): Promise<void> {
    if (this.sweeping || this.waiters.size === 0) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const due = [...this.waiters.entries()].filter(([, w]) => now - w.since >= minAgeMs).map(([id]) => id);
      if (due.length > 0) await this.readFinished(due);
    } catch (err) {
      this.logger.warn(`sweep failed: ${(err as Error).message}`);
    } finally {
      this.sweeping = false;
    }
  }

  private async readFinished(jobIds: string[]): Promise<void> {
    // Separate commands, not one pipeline: on a Redis Cluster the jobs of different queues live
    // on different nodes, and ioredis refuses a pipeline that spans nodes. ioredis still writes
    // them back to back without waiting for each reply.
    const reads = await Promise.all(
      jobIds.map((id) => {
        const queue = queueOfJobId(id);
        return Promise.all([
          queue ? this.redis.hmget(this.keys.jobHash(queue, id), 'finishedOn', 'returnvalue', 'failedReason') : undefined,
          this.redis.exists(this.keys.cancelFlag(id)),
        ]);
      }),
    );
    for (const [i, id] of jobIds.entries()) {
      const [fields, exists] = reads[i];
      const canceled = exists === 1;
      const [finishedOn, returnvalue, failedReason] = fields ?? [null, null, null];
      // A job that failed an attempt and then succeeded has both fields: returnvalue wins.
      if (finishedOn && returnvalue) {
        this.settle(id, { kind: 'completed', result: unpackResult(JSON.parse(returnvalue) as RawInferenceResponse) });
      } else if (finishedOn && failedReason) {
        this.settle(id, { kind: 'failed', failure: decodeFailure(failedReason) });
      } else if (canceled && !fields?.some((f) => f !== null)) {
        // The job hash is gone and the cancel flag is set: it was canceled while waiting.
        this.settle(id, { kind: 'failed', failure: CANCELED_FAILURE });
      }
    }
  }
}
