import { JobsOptions, QueueOptions } from 'bullmq';
import { GatewayConfig } from '@lib/config';
import { GATEWAY_BACKOFF } from './retry-policy';

/**
 * Options of every inference job: retries with the gateway's backoff, results kept for
 * polling for JOB_RETENTION_SECONDS, no stack traces stored (they would reach no client).
 */
export function inferenceJobOptions(config: GatewayConfig, jobId: string): JobsOptions {
  return {
    jobId,
    attempts: config.jobAttempts,
    backoff: { type: GATEWAY_BACKOFF },
    removeOnComplete: { age: config.jobRetentionSeconds },
    removeOnFail: { age: config.jobRetentionSeconds },
    stackTraceLimit: 0,
  };
}

/**
 * Events BullMQ keeps in each queue's events stream (its default is 10,000). Every `completed`
 * event carries a copy of the job's result, and nothing in the gateway reads the stream
 * (synchronous answers travel in completion notices): with 4-text embedding results of
 * text-embedding-3-large, 10,000 events held 120 MB per queue.
 */
export const QUEUE_EVENTS_MAX_LEN = 1_000;

/**
 * Options of every BullMQ Queue the gateway creates. A Queue writes them into the queue's meta
 * hash when it connects, the last one to connect wins, so every Queue of a queue must give the
 * same: the API's producers, the workers' batch feeders and long-media parents.
 */
export function gatewayQueueOptions(): Pick<QueueOptions, 'streams'> {
  return { streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } } };
}
