import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ALL_QUEUES, CANCELED_FAILURE, decodeFailure, JobFailure, queueOfJobId, QueueName, RawInferenceResponse, unpackResult } from '@lib/contracts';
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
  queue: QueueName | undefined;
}

export interface PendingWait {
  promise: Promise<WaitOutcome>;
  /** Stop waiting (e.g. the enqueue failed). */
  cancel(): void;
}

/** How long one XREAD blocks; a reader whose queue has no waiters left stops within this. */
const READ_BLOCK_MS = 2_000;
/** Events per XREAD reply at most. */
const READ_COUNT = 1_000;
/** Pause before reading again after a failed XREAD (Redis away: ioredis reconnects meanwhile). */
const READ_RETRY_MS = 200;

/** One queue's events stream and the blocking connection that reads it. */
interface StreamReader {
  key: string;
  client: RedisClient;
  /** Waiters of this process on the queue: the stream is read only while there are some. */
  waiting: number;
  running: boolean;
}

/**
 * One completion listener per API process (not `waitUntilFinished` per request). It reads the
 * events stream BullMQ keeps per queue (`<prefix>:<queue>:events`): the script that stores a
 * job's result (moveToFinished) appends the `completed` event, with the result, in the same
 * step. So a waiting request hears of its result as soon as it is stored, without a round trip
 * back to the worker and a second message from it, and the job already reads as completed when
 * the client gets its answer. A queue's stream is read (one blocking connection per queue, so
 * that it also works on a Redis Cluster) only while some request of this process waits on it.
 *
 * An event can still be missed (a reconnect before the first event was read; BullMQ trims the
 * stream to about 10,000 events, a few seconds at full speed, so a reader that falls that far
 * behind), so a sweeper re-reads the jobs of waiters older than SYNC_SWEEP_INTERVAL_MS from
 * Redis: a result is never lost, only late.
 */
@Injectable()
export class SyncWaiter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SyncWaiter.name);
  private readonly waiters = new Map<string, Waiter>();
  private readonly readers = new Map<QueueName, StreamReader>();
  private sweepTimer?: NodeJS.Timeout;
  private sweeping = false;
  private closed = false;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  onModuleInit(): void {
    // Connected up front, so that the first request's read is not held up by a connect.
    for (const queue of ALL_QUEUES) {
      const client = duplicateRedis(this.redis, `api-events-${queue}`);
      client.on('error', (err: Error) => this.logger.warn(`${queue} events reader: ${err.message}`));
      this.readers.set(queue, { key: this.keys.queueEvents(queue), client, waiting: 0, running: false });
    }
    this.sweepTimer = setInterval(() => void this.sweep(this.config.syncSweepIntervalMs), this.config.syncSweepIntervalMs);
    this.sweepTimer.unref();
  }

  onApplicationShutdown(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const [id] of this.waiters) this.settle(id, { kind: 'timeout' });
    for (const reader of this.readers.values()) reader.client.disconnect();
  }

  get size(): number {
    return this.waiters.size;
  }

  hasRoom(): boolean {
    return this.waiters.size < this.config.syncMaxWaiters;
  }

  /** Register before the job is enqueued, so that the job cannot end before its waiter listens. */
  register(jobId: string, timeoutMs: number): PendingWait {
    const first = this.waiters.get(jobId);
    if (first) return this.share(first, timeoutMs);
    let resolve!: (o: WaitOutcome) => void;
    const promise = new Promise<WaitOutcome>((r) => (resolve = r));
    const timer = setTimeout(() => this.settle(jobId, { kind: 'timeout' }), timeoutMs);
    const queue = queueOfJobId(jobId);
    this.waiters.set(jobId, { resolve, promise, timer, since: Date.now(), queue });
    const reader = queue && this.readers.get(queue);
    if (reader) {
      reader.waiting++;
      if (!reader.running) void this.read(reader);
    }
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
    const reader = waiter.queue && this.readers.get(waiter.queue);
    if (reader) reader.waiting--;
    waiter.resolve(outcome);
  }

  /**
   * Reads a queue's events while some request waits on the queue. It starts at the stream's end
   * (`$`): a waiter registers before its job is enqueued, so no event of its job can come before.
   */
  private async read(reader: StreamReader): Promise<void> {
    reader.running = true;
    let last = '$';
    try {
      while (!this.closed && reader.waiting > 0) {
        let reply: Array<[string, Array<[string, string[]]>]> | null;
        try {
          reply = (await reader.client.xread('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', reader.key, last)) as typeof reply;
        } catch (err) {
          if (this.closed) return;
          this.logger.warn(`reading ${reader.key}: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, READ_RETRY_MS));
          // Events of the gap are read on from `last`; with none read yet, the sweeper covers them.
          if (last === '$') void this.sweep(0);
          continue;
        }
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            this.onEvent(fields);
          }
        }
      }
    } finally {
      reader.running = false;
    }
  }

  /** One BullMQ event: `event <name> jobId <id> [<field> <value>]...`. */
  private onEvent(fields: string[]): void {
    const event = fields[1];
    if (event !== 'completed' && event !== 'failed' && event !== 'removed') return;
    const jobId = fields[3];
    if (fields[2] !== 'jobId' || !this.waiters.has(jobId)) return;
    if (event === 'completed') {
      const value = fieldOf(fields, 'returnvalue');
      const result = value === undefined ? undefined : parseResult(value);
      if (result) return this.settle(jobId, { kind: 'completed', result });
    } else if (event === 'failed') {
      // Only a final failure is an event: a retry is `delayed` or `waiting`.
      return this.settle(jobId, { kind: 'failed', failure: decodeFailure(fieldOf(fields, 'failedReason')) });
    }
    // Removed unfinished: canceled while waiting (the cancel flag says so). Or an event we could not read.
    void this.readFinished([jobId]).catch((err: Error) => this.logger.warn(`reading job ${jobId}: ${err.message}`));
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
      const result = finishedOn && returnvalue ? parseResult(returnvalue) : undefined;
      if (result) {
        this.settle(id, { kind: 'completed', result });
      } else if (finishedOn && failedReason) {
        this.settle(id, { kind: 'failed', failure: decodeFailure(failedReason) });
      } else if (canceled && !fields?.some((f) => f !== null)) {
        // The job hash is gone and the cancel flag is set: it was canceled while waiting.
        this.settle(id, { kind: 'failed', failure: CANCELED_FAILURE });
      }
    }
  }
}

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 4; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function parseResult(json: string): RawInferenceResponse | undefined {
  try {
    return unpackResult(JSON.parse(json) as RawInferenceResponse);
  } catch {
    return undefined;
  }
}
