import { BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { batchCallbackQueueName, BatchCallbackJobData, BatchKeys, BatchLineOutcome, InferenceJobData, QueueName, RECORD_LINES, recordLinesArgs } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { gatewayQueueOptions, LuaScript, REDIS, RedisClient, RedisKeys } from '@lib/queue';

const RECORD_LINES_SCRIPT = new LuaScript(RECORD_LINES);

/**
 * The BullMQ queues the batch machinery writes to from a worker process: every provider queue
 * (a worker feeds a batch's lines to any of them, whatever it serves itself) and the callback
 * queue, sharing the worker's Redis connection and made on first use; and the batch keys.
 */
@Injectable()
export class BatchQueues implements BeforeApplicationShutdown {
  readonly keys: BatchKeys;
  private readonly providers = new Map<QueueName, Queue<InferenceJobData>>();
  private callbackQueue?: Queue<BatchCallbackJobData>;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) readonly redis: RedisClient,
    readonly redisKeys: RedisKeys,
  ) {
    this.keys = new BatchKeys(config.queuePrefix);
  }

  /** Records line outcomes (RECORD_LINES): returns [recorded, lines in the queue, settled 0|1, lines waiting to be fed]. */
  async record(id: string, outcomes: BatchLineOutcome[]): Promise<number[]> {
    const k = this.keys;
    return (await RECORD_LINES_SCRIPT.run(this.redis, [k.meta(id), k.results(id), k.queued(id), k.pending(id)], recordLinesArgs(outcomes))) as number[];
  }

  provider(queue: QueueName): Queue<InferenceJobData> {
    let q = this.providers.get(queue);
    if (!q) {
      q = new Queue<InferenceJobData>(this.redisKeys.queueName(queue), { connection: this.redis, prefix: this.config.queuePrefix, ...gatewayQueueOptions() });
      this.providers.set(queue, q);
    }
    return q;
  }

  callbacks(): Queue<BatchCallbackJobData> {
    this.callbackQueue ??= new Queue<BatchCallbackJobData>(batchCallbackQueueName(this.redisKeys.cluster), {
      connection: this.redis,
      prefix: this.config.queuePrefix,
      ...gatewayQueueOptions(),
    });
    return this.callbackQueue;
  }

  async beforeApplicationShutdown(): Promise<void> {
    const closing: Array<Promise<void>> = [...this.providers.values()].map((q) => q.close());
    if (this.callbackQueue) closing.push(this.callbackQueue.close());
    await Promise.allSettled(closing);
  }
}
