import { QueueName } from '@lib/contracts';

/**
 * Every Redis key and channel the gateway writes besides BullMQ's own, all under one prefix
 * (QUEUE_PREFIX) so that several deployments, or test files, can share one Redis.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** BullMQ's hash of one job (BullMQ's own layout: `<prefix>:<queue>:<id>`). */
  jobHash(queue: QueueName, jobId: string): string {
    return `${this.prefix}:${queue}:${jobId}`;
  }

  /** A large inline input of a job, stored decoded with a TTL. */
  blob(jobId: string, input: string): string {
    return `${this.prefix}:blob:${jobId}:${input}`;
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
}
