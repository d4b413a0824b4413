import { QueueName } from '@lib/contracts';

/**
 * The name BullMQ knows a queue by; the one place it differs from QueueName. Every BullMQ key
 * of a queue is `<prefix>:<name>:...` and its Lua scripts touch many of them at once, so on a
 * Redis Cluster they must share a hash slot: the name becomes a hash tag (`{openai}`), one per
 * queue, so that queues spread over the cluster's nodes. A single Redis keeps the plain name
 * (and the key layout of earlier releases).
 */
export function bullQueueName(queue: QueueName, cluster: boolean): string {
  return cluster ? `{${queue}}` : queue;
}

/**
 * Every Redis key and channel the gateway writes besides BullMQ's own, all under one prefix
 * (QUEUE_PREFIX) so that several deployments, or test files, can share one Redis.
 */
export class RedisKeys {
  /** `cluster`: connected to a Redis Cluster (REDIS_CLUSTER_NODES), see bullQueueName. */
  constructor(
    readonly prefix: string,
    readonly cluster = false,
  ) {}

  /** The queue's name for BullMQ (Queue, Worker): `openai`, or `{openai}` on a cluster. */
  queueName(queue: QueueName): string {
    return bullQueueName(queue, this.cluster);
  }

  /** BullMQ's hash of one job (BullMQ's own layout: `<prefix>:<queue>:<id>`). */
  jobHash(queue: QueueName, jobId: string): string {
    return `${this.prefix}:${this.queueName(queue)}:${jobId}`;
  }

  /**
   * A large inline input of a job, stored decoded with a TTL. On a cluster the job id is a hash
   * tag, so that one DEL removes all the blobs of a job (different jobs still spread).
   */
  blob(jobId: string, input: string): string {
    return this.cluster ? `${this.prefix}:blob:{${jobId}}:${input}` : `${this.prefix}:blob:${jobId}:${input}`;
  }

  /** Completion notices for the sync waiters of one API process. */
  notifyChannel(instanceId: string): string {
    return `${this.prefix}:notify:${instanceId}`;
  }

  /** Cancel requests for running jobs, heard by every worker. */
  cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }

  /** Set when a job is canceled, so a worker that picks it up a moment later drops it. */
  cancelFlag(jobId: string): string {
    return `${this.prefix}:canceled:${jobId}`;
  }

  /** Sorted set of worker ids (score: last heartbeat, epoch ms): the index of the records below. */
  workerIndex(): string {
    return `${this.prefix}:workers`;
  }

  /** One worker's heartbeat record (JSON); it expires unless the worker refreshes it. */
  workerInfo(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }
}
