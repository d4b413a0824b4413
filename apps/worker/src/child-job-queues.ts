import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { queueOfJobId, QueueName } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { gatewayQueueOptions, REDIS, RedisClient, RedisKeys } from '@lib/queue';

/**
 * Producer handles on the worker's own queues, for jobs that enqueue child jobs beside
 * themselves (a split embedding request's chunks): one BullMQ Queue per queue name, opened on
 * first use over the worker's shared connection and closed with the module.
 */
@Injectable()
export class ChildJobQueues implements OnModuleDestroy {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** The queue `job` lives on. */
  of(job: Job): Queue {
    const name = queueOfJobId(job.id!);
    if (!name) throw new Error(`job id ${job.id} names no queue`);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(this.keys.queueName(name), { connection: this.redis, prefix: this.config.queuePrefix, ...gatewayQueueOptions() });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
