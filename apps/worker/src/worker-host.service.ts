import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  blobRefsOf,
  CompletionNotice,
  decodeFailure,
  InferenceJobData,
  QueueName,
  RawInferenceResponse,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BlobStore, coalesceWrites, createRedis, duplicateRedis, GATEWAY_BACKOFF, REDIS, RedisClient, RedisKeys, retryDelayMs } from '@lib/queue';
import { sweepStaleTempFiles } from '@lib/media';
import { ABORT_CANCELED, ABORT_SHUTDOWN, InferenceProcessor } from './inference.processor';
import { CancelRegistry } from './cancel-registry';
import { BatchRecorder } from './batch-recorder.service';
import { WorkerMetricsService } from './worker-metrics.service';
import { StartFirstWorker } from './start-first-worker';
import { RateGate } from './rate-gate';
import { completedNotice, FinishNotices } from './finish-notices';
import { WORKER_QUEUES } from './worker.tokens';

/** Temp files older than this at start-up belong to a crashed worker. */
const STALE_TEMP_MS = 6 * 3600_000;

/**
 * One BullMQ Worker per served queue. It publishes completion notices to the API process
 * that waits for a job, listens for cancel requests, and on shutdown stops taking jobs, lets
 * running ones finish within WORKER_SHUTDOWN_GRACE_MS and hands the rest back to the queue.
 */
@Injectable()
export class WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WorkerHost.name);
  private readonly workers = new Map<QueueName, StartFirstWorker<InferenceJobData, RawInferenceResponse>>();
  /** BullMQ does not close a connection it was given: we do, after the workers. */
  private readonly connections: RedisClient[] = [];
  private subscriber?: RedisClient;
  private readonly notices = new FinishNotices();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(WORKER_QUEUES) private readonly queues: QueueName[],
    private readonly keys: RedisKeys,
    private readonly blobs: BlobStore,
    private readonly processor: InferenceProcessor,
    private readonly cancels: CancelRegistry,
    private readonly metrics: WorkerMetricsService,
    private readonly batches: BatchRecorder,
    private readonly gate: RateGate,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const swept = await sweepStaleTempFiles(this.config.mediaTmpDir, STALE_TEMP_MS).catch(() => 0);
    if (swept > 0) this.logger.log(`removed ${swept} stale temp file(s) from ${this.config.mediaTmpDir}`);

    const subscriber = duplicateRedis(this.redis, 'worker-cancel');
    this.subscriber = subscriber;
    subscriber.on('error', (err) => this.logger.warn(`cancel subscriber: ${err.message}`));
    subscriber.on('message', (_channel: string, jobId: string) => {
      this.cancels.remember(jobId);
      for (const worker of this.workers.values()) worker.cancelJob(jobId, ABORT_CANCELED);
    });
    await subscriber.subscribe(this.keys.cancelChannel());

    for (const queue of this.queues) this.workers.set(queue, this.startWorker(queue));
    // A worker that was idle fetches again once its new job's provider call is out.
    this.gate.onAdmission((queue) => this.workers.get(queue)?.releaseFetch());
    this.logger.log(`serving ${this.queues.map((q) => `${q} (concurrency ${this.config.workerConcurrency[q]})`).join(', ')}`);
  }

  private startWorker(queue: QueueName): StartFirstWorker<InferenceJobData, RawInferenceResponse> {
    const backoff = { baseDelayMs: this.config.retryBaseDelayMs, maxDelayMs: this.config.retryMaxDelayMs };
    const connection = createRedis(this.config, `worker-${queue}`, { maxRetriesPerRequest: null });
    coalesceWrites(connection); // every job's moveToFinished goes out on it (BullMQ blocks on a duplicate)
    this.connections.push(connection);
    const worker = new StartFirstWorker<InferenceJobData, RawInferenceResponse>(
      this.keys.queueName(queue),
      // Three declared parameters: BullMQ passes the abort signal only to such processors.
      (job, token, signal) => this.run(job, token, signal!),
      {
        connection,
        prefix: this.config.queuePrefix,
        concurrency: this.config.workerConcurrency[queue],
        // The fetched job's rate-limit admission runs in Redis right behind its fetch.
        onFetch: (client, token, keys) => this.gate.admitOnFetch(queue, client as unknown as Redis, token, keys),
        lockDuration: this.config.workerLockDurationMs,
        // Stalled-job recovery stays on: a job whose worker died goes back to the queue.
        stalledInterval: Math.max(1000, Math.floor(this.config.workerLockDurationMs / 2)),
        maxStalledCount: 2,
        settings: {
          backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
            type === GATEWAY_BACKOFF ? retryDelayMs(attemptsMade, backoff, err) : -1,
        },
      },
    );
    this.notices.attach(worker);
    worker.on('completed', (job, result) => void this.onCompleted(job, result));
    worker.on('failed', (job, err) => {
      if (job) void this.onFailed(job, err);
    });
    worker.on('error', (err) => this.logger.warn(`${queue} worker: ${err.message}`));
    this.metrics.observeWorker(queue, worker);
    return worker;
  }

  private async run(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, signal: AbortSignal): Promise<RawInferenceResponse> {
    if (job.data.notify) this.notices.expect(job.id!, job.data.notify);
    try {
      return await this.processor.process(job, token, signal);
    } catch (err) {
      this.notices.forget(job.id!);
      throw err;
    } finally {
      this.gate.dropFetchAdmission(token);
    }
  }

  private async onCompleted(job: Job<InferenceJobData, RawInferenceResponse>, result: RawInferenceResponse): Promise<void> {
    let notice: string | undefined;
    // Usually Redis has published it right behind moveToFinished (FinishNotices).
    if (job.data.notify && !(await this.notices.take(job.id!))) notice = completedNotice(job.id!, JSON.stringify(result));
    await this.batches.record(job, { result });
    await this.finish(job, notice);
  }

  private async onFailed(job: Job<InferenceJobData, RawInferenceResponse>, err: Error): Promise<void> {
    if (!job.finishedOn) return; // a retry is scheduled: not the end yet
    const notice: CompletionNotice = { id: job.id!, state: 'failed', failure: decodeFailure(err.message) };
    await this.batches.record(job, { err });
    await this.finish(job, job.data.notify ? JSON.stringify(notice) : undefined);
  }

  private async finish(job: Job<InferenceJobData, RawInferenceResponse>, notice: string | undefined): Promise<void> {
    try {
      const refs = blobRefsOf(job.data.request);
      if (refs.length > 0) await this.blobs.delete(refs);
      if (job.data.notify && notice) await this.redis.publish(job.data.notify, notice);
    } catch (err) {
      // The API's sweeper reads the stored result if this notice is lost.
      this.logger.warn(`notice for job ${job.id} not sent: ${(err as Error).message}`);
    }
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.logger.log(`stopping (${signal ?? 'shutdown'}): no new jobs; running jobs get ${this.config.workerShutdownGraceMs} ms`);
    const closing = [...this.workers.values()].map((w) => w.close());
    const all = Promise.allSettled(closing);
    const graceOver = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), this.config.workerShutdownGraceMs).unref()),
    ]);
    if (graceOver) {
      this.logger.warn('grace period over: handing running jobs back to the queue');
      for (const worker of this.workers.values()) worker.cancelAllJobs(ABORT_SHUTDOWN);
      await all;
    }
    this.subscriber?.disconnect();
    for (const connection of this.connections) connection.disconnect();
    this.logger.log('stopped: every job finished or handed back');
  }
}
