import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { batchCallbackQueueName, BatchCallbackJobData } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { createRedis, RedisClient, RedisKeys } from '@lib/queue';
import { postSignedJson, WebhookError } from './batch-webhook';

/** Callbacks in flight per worker process. */
const CONCURRENCY = 4;

/**
 * Sends each batch's callback (queued once by BatchFinalizer): the final batch as JSON, signed
 * with BATCH_CALLBACK_SECRET. A failed POST is retried by BullMQ with exponential backoff up to
 * BATCH_CALLBACK_ATTEMPTS times; a host the URL policy refuses is not retried.
 */
@Injectable()
export class BatchCallbackProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(BatchCallbackProcessor.name);
  private worker?: Worker<BatchCallbackJobData>;
  private connection?: RedisClient;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly keys: RedisKeys,
  ) {}

  onApplicationBootstrap(): void {
    this.connection = createRedis(this.config, 'worker-batch-callbacks', { maxRetriesPerRequest: null });
    this.worker = new Worker<BatchCallbackJobData>(batchCallbackQueueName(this.keys.cluster), (job) => this.process(job), {
      connection: this.connection,
      prefix: this.config.queuePrefix,
      concurrency: CONCURRENCY,
    });
    this.worker.on('failed', (job, err) => {
      if (job) this.logger.warn(`batch ${job.data.batch.batch_id}: callback attempt ${job.attemptsMade} failed: ${err.message}`);
    });
    this.worker.on('error', (err) => this.logger.warn(`batch callbacks: ${err.message}`));
  }

  async process(job: Job<BatchCallbackJobData>): Promise<void> {
    const secret = this.config.batchCallbackSecret;
    if (!secret) throw new UnrecoverableError('BATCH_CALLBACK_SECRET is not set on this worker: the callback cannot be signed');
    try {
      await postSignedJson(job.data.url, JSON.stringify(job.data.batch), secret, this.config.mediaAllowPrivateUrls);
    } catch (err) {
      if (err instanceof WebhookError && err.permanent) throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close().catch(() => undefined);
    this.connection?.disconnect();
  }
}
