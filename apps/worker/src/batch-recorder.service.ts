import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  BatchResultLine,
  batchJobId,
  decodeFailure,
  InferenceJobData,
  presentFailure,
  queueOfJobId,
  RawInferenceResponse,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BatchFeeder } from './batch-feeder.service';
import { BatchFinalizer } from './batch-finalizer.service';
import { BatchQueues } from './batch-queues';

/**
 * Writes the outcome of a batch line's job into its batch when the job ends (called by
 * WorkerHost's completion hooks): the result line, the counters, and, for the last line, the end
 * of the batch. When the batch's window has half drained, it is topped up at once.
 */
@Injectable()
export class BatchRecorder {
  private readonly logger = new Logger(BatchRecorder.name);

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly queues: BatchQueues,
    private readonly feeder: BatchFeeder,
    private readonly finalizer: BatchFinalizer,
  ) {}

  /** A job that ended: `result` when it completed, `err` when it failed for good. Never throws. */
  async record(job: Job<InferenceJobData, RawInferenceResponse>, outcome: { result: RawInferenceResponse } | { err: Error }): Promise<void> {
    const line = job.data.batch;
    const queue = queueOfJobId(job.id ?? '');
    // Only the line's own job: jobs a worker makes from it (split parts) carry its data too.
    if (!line || !queue || job.id !== batchJobId(queue, line.id, line.index)) return;
    const result: BatchResultLine = { custom_id: line.customId, index: line.index };
    if ('result' in outcome) result.response = outcome.result;
    else result.error = presentFailure(decodeFailure(outcome.err.message));
    try {
      const [, queued, settled, pending] = await this.queues.record(line.id, [{ jobId: job.id, result }]);
      if (settled === 1) await this.finalizer.finalize(line.id);
      else if (pending > 0 && queued <= this.config.batchFeedWindow / 2) void this.feeder.feed(line.id).catch(() => undefined);
    } catch (err) {
      // The outcome stays in the job (JOB_RETENTION_SECONDS); the batch waits for this line.
      this.logger.warn(`batch ${line.id} line ${line.index}: outcome not recorded: ${(err as Error).message}`);
    }
  }
}
