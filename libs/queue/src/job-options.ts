import { JobsOptions } from 'bullmq';
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
