import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import {
  BatchLineOutcome,
  BatchPendingLine,
  BatchResultLine,
  BatchStatus,
  batchJobId,
  batchStoppedError,
  CANCELED_FAILURE,
  decodeFailure,
  ErrorType,
  InferenceJobData,
  JobName,
  presentFailure,
  QueueName,
  queueOfJobId,
  RawInferenceResponse,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { inferenceJobOptions } from '@lib/queue';
import { fetchAdmitSubject } from '@lib/ratelimit';
import { BatchCompactor } from './batch-compactor.service';
import { BatchFinalizer } from './batch-finalizer.service';
import { withBatchLock } from './batch-lock';
import { BatchQueues } from './batch-queues';

/** How often a worker walks the unfinished batches (ms). */
const TICK_MS = 500;
/** Lines dropped per step when a batch is canceled. */
const DRAIN_PAGE = 500;
/** Every this many walks, lines whose job ended without its outcome being recorded are recorded (a worker died in between). */
const RECONCILE_EVERY_TICKS = 10;
/** A job that ended this long ago (ms) without its outcome in the batch lost its recording. */
const RECORD_GRACE_MS = 5_000;
/** A line's job missing from its queue this long (ms) is lost: longer than a dead feeder's lock lasts. */
const LOST_AFTER_MS = 60_000;
/** Job states in which a canceled batch's line has not started and can be taken out of its queue. */
const NOT_STARTED = new Set(['waiting', 'prioritized', 'delayed', 'paused', 'waiting-children']);

/**
 * Moves a batch's lines into their provider queues a window at a time (BATCH_FEED_WINDOW lines
 * of one batch in the queues at once, and never past QUEUE_MAX_BACKLOG), so that a batch of any
 * size goes through without filling Redis with jobs or starving interactive requests. Each
 * worker walks the unfinished batches every TICK_MS; a line's outcome also tops its batch up
 * (BatchRecorder). On cancel or failure it drops the lines that have not started.
 */
@Injectable()
export class BatchFeeder implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(BatchFeeder.name);
  private timer?: NodeJS.Timeout;
  private ticking = false;
  private ticks = 0;
  /** Job ids in a batch's `queued` set found without a job, and since when (epoch ms). */
  private readonly missingSince = new Map<string, number>();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly queues: BatchQueues,
    private readonly finalizer: BatchFinalizer,
    private readonly compactor: BatchCompactor,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  beforeApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One walk over the unfinished batches; a walk still running is not doubled. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const { redis, keys } = this.queues;
      const reconcile = ++this.ticks % RECONCILE_EVERY_TICKS === 0;
      for (const id of await redis.smembers(keys.active())) {
        try {
          if (reconcile) await this.reconcile(id);
          const [status, settled, failing] = await redis.hmget(keys.meta(id), 'status', 'settled', 'failing');
          if (status === null) await redis.srem(keys.active(), id);
          else if (settled === '1') await this.finalizer.finalize(id);
          else if (failing === '1') await this.drain(id, 'failed');
          else if (status === BatchStatus.Canceling) await this.drain(id, 'canceled');
          else await this.feed(id);
          if (settled !== '1') await this.compactor.compact(id, false);
        } catch (err) {
          this.logger.warn(`batch ${id}: ${(err as Error).message}`);
        }
      }
      await this.compactor.sweep();
    } catch (err) {
      this.logger.warn(`batch feeder: ${(err as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  /** Tops the batch's lines in the queues up to the window; nothing when another worker is at it. */
  async feed(id: string): Promise<void> {
    const { redis, keys } = this.queues;
    await withBatchLock(redis, keys.lock(id), async () => {
      const status = await redis.hget(keys.meta(id), 'status');
      if (status !== BatchStatus.Validating && status !== BatchStatus.InProgress) return;
      const room = this.config.batchFeedWindow - (await redis.scard(keys.queued(id)));
      if (room <= 0) return;
      const lines = (await redis.lrange(keys.pending(id), 0, room - 1)).map((raw) => JSON.parse(raw) as BatchPendingLine);
      const taken = await this.withinBacklog(lines);
      if (taken.length === 0) return;
      const now = Date.now();
      const byQueue = new Map<QueueName, BatchPendingLine[]>();
      for (const line of taken) {
        const group = byQueue.get(line.q) ?? [];
        group.push(line);
        byQueue.set(line.q, group);
      }
      // Counted as queued before the jobs exist, so that a line that ends at once leaves the set
      // (BatchRecorder) after it entered it. A crash from here on feeds the same lines again, as
      // the same job ids (BullMQ adds a job id once); reconcile() clears what that leaves behind.
      await redis.sadd(keys.queued(id), ...taken.map((l) => batchJobId(l.q, id, l.i)));
      for (const [queue, group] of byQueue) {
        await this.queues.provider(queue).addBulk(
          group.map((line) => {
            const data: InferenceJobData = { admit: fetchAdmitSubject(line.r, line.s !== undefined), request: line.r, receivedAt: now, requestId: line.x, semanticCache: line.s, batch: { id, index: line.i, customId: line.c } };
            return { name: JobName.Inference, data, opts: inferenceJobOptions(this.config, batchJobId(queue, id, line.i)) };
          }),
        );
      }
      await redis.ltrim(keys.pending(id), taken.length, -1);
    });
  }

  /** The head of `lines` whose queues have room under QUEUE_MAX_BACKLOG (in order: it stops at the first that has none). */
  private async withinBacklog(lines: BatchPendingLine[]): Promise<BatchPendingLine[]> {
    const max = this.config.queueMaxBacklog;
    if (max === 0) return lines;
    const room = new Map<QueueName, number>();
    let n = 0;
    for (const line of lines) {
      if (!room.has(line.q)) {
        const counts = await this.queues.provider(line.q).getJobCounts('waiting', 'prioritized', 'delayed', 'paused');
        room.set(line.q, max - Object.values(counts).reduce((a, b) => a + b, 0));
      }
      const left = room.get(line.q)!;
      if (left <= 0) break;
      room.set(line.q, left - 1);
      n++;
    }
    return lines.slice(0, n);
  }

  /**
   * Records the lines whose job ended RECORD_GRACE_MS ago or more but are still counted as queued:
   * their worker died between the job's end and BatchRecorder, or the job was removed (a DELETE
   * of the line's own job), which would otherwise keep the batch from ending.
   */
  private async reconcile(id: string): Promise<void> {
    const { redis, keys } = this.queues;
    for (const jobId of await redis.smembers(keys.queued(id))) {
      const queue = queueOfJobId(jobId);
      const job = queue ? await this.queues.provider(queue).getJob(jobId) : undefined;
      const index = Number(jobId.slice(jobId.lastIndexOf('-') + 1));
      let outcome: BatchResultLine | undefined;
      if (!job) {
        // Deleted through /v1/inference/jobs: canceled. Missing otherwise: lost, once it has been
        // missing for longer than a feeder that died between counting and adding it holds the lock.
        const canceled = (await redis.exists(this.queues.redisKeys.cancelFlag(jobId))) === 1;
        const seen = this.missingSince.get(jobId) ?? Date.now();
        this.missingSince.set(jobId, seen);
        if (canceled) outcome = { custom_id: null, index, error: CANCELED_FAILURE.error };
        else if (Date.now() - seen > LOST_AFTER_MS) {
          outcome = { custom_id: null, index, error: { type: ErrorType.Internal, message: "The line's job left its queue before it ended", code: 'batch_line_lost' } };
        }
      } else if (job.finishedOn && Date.now() - job.finishedOn >= RECORD_GRACE_MS) {
        const state = await job.getState();
        const customId = job.data.batch?.customId ?? null;
        if (state === 'completed') outcome = { custom_id: customId, index, response: job.returnvalue as RawInferenceResponse };
        else if (state === 'failed') outcome = { custom_id: customId, index, error: presentFailure(decodeFailure(job.failedReason)) };
      }
      if (job || outcome) this.missingSince.delete(jobId);
      if (outcome) await this.queues.record(id, [{ jobId, result: outcome }]);
    }
  }

  /** Every line of a canceled or failed batch that has not started ends with batch_canceled / batch_failed. */
  async drain(id: string, why: 'canceled' | 'failed'): Promise<void> {
    const { redis, keys } = this.queues;
    const error = batchStoppedError(why);
    const record = (outcomes: BatchLineOutcome[]): Promise<unknown> => this.queues.record(id, outcomes);
    await withBatchLock(redis, keys.lock(id), async () => {
      for (;;) {
        const head = (await redis.lrange(keys.pending(id), 0, DRAIN_PAGE - 1)).map((raw) => JSON.parse(raw) as BatchPendingLine);
        if (head.length === 0) break;
        await record(head.map((l) => ({ result: { custom_id: l.c, index: l.i, error } })));
        await redis.ltrim(keys.pending(id), head.length, -1);
      }
      for (const jobId of await redis.smembers(keys.queued(id))) {
        const queue = queueOfJobId(jobId);
        const job = queue ? await this.queues.provider(queue).getJob(jobId) : undefined;
        const index = Number(jobId.slice(jobId.lastIndexOf('-') + 1));
        if (job && !NOT_STARTED.has(await job.getState())) continue; // running: it finishes and records itself
        const removed = job ? await job.remove().then(() => true, () => false) : true;
        if (removed) await record([{ jobId, result: { custom_id: job?.data.batch?.customId ?? null, index, error } }]);
      }
    });
  }
}
