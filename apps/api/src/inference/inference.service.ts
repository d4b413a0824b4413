import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  ErrorType,
  GatewayError,
  InferenceJobData,
  JobName,
  JobReference,
  JobStatus,
  newJobId,
  presentFailure,
  RawInferenceRequest,
  RawInferenceResponse,
  statusUrl,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BlobStore, inferenceJobOptions, QueueRegistry } from '@lib/queue';
import { JobsService } from '../jobs/jobs.service';
import { RequestNormalizer } from './request-normalizer';
import { PendingWait, SyncWaiter } from './sync-waiter.service';

export interface SubmitOptions {
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  /** `Prefer: respond-async`: answer 202 at once. */
  respondAsync: boolean;
  /** `Prefer: wait=N` in ms, capped by SYNC_TIMEOUT_MS. */
  waitMs?: number;
}

export type SubmitOutcome = { kind: 'done'; response: RawInferenceResponse } | { kind: 'accepted'; reference: JobReference };

/** Validates, enqueues on the provider's queue, and waits for the result when asked to. */
@Injectable()
export class InferenceService {
  private readonly logger = new Logger(InferenceService.name);

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly normalizer: RequestNormalizer,
    private readonly queues: QueueRegistry,
    private readonly waiter: SyncWaiter,
    private readonly blobs: BlobStore,
    private readonly jobs: JobsService,
  ) {}

  async submit(body: RawInferenceRequest, options: SubmitOptions): Promise<SubmitOutcome> {
    // Cheap checks first: a bad request is refused before any Redis write.
    const checked = this.normalizer.check(body);
    const { entry } = checked;
    const jobId = newJobId(entry.queue);
    const { request, blobs } = await this.normalizer.normalize(body, checked, jobId);

    const waitMs = Math.min(options.waitMs ?? this.config.syncTimeoutMs, this.config.syncTimeoutMs);
    const wait = !options.respondAsync && waitMs > 0 && this.waiter.hasRoom();
    const data: InferenceJobData = { request, receivedAt: options.receivedAt, notify: wait ? this.waiter.channel : undefined };
    const pending: PendingWait | undefined = wait ? this.waiter.register(jobId, waitMs) : undefined;
    try {
      await this.queues.get(entry.queue).add(JobName.Inference, data, inferenceJobOptions(this.config, jobId));
    } catch (err) {
      pending?.cancel();
      await this.blobs.delete(blobs).catch(() => undefined);
      this.logger.error(`enqueue on ${entry.queue} failed: ${(err as Error).message}`);
      throw new GatewayError(ErrorType.ServiceUnavailable, 'The job queue is unavailable; try again shortly', 'queue_unavailable');
    }
    if (!pending) return { kind: 'accepted', reference: reference(jobId, JobStatus.Pending) };

    const outcome = await pending.promise;
    switch (outcome.kind) {
      case 'completed':
        return { kind: 'done', response: { ...outcome.result, latency_ms: Date.now() - options.receivedAt } };
      case 'failed':
        throw GatewayError.fromDetail(presentFailure(outcome.failure));
      case 'timeout':
        return { kind: 'accepted', reference: reference(jobId, await this.jobs.statusOf(jobId)) };
    }
  }
}

function reference(jobId: string, status: JobStatus): JobReference {
  return { job_id: jobId, status, status_url: statusUrl(jobId) };
}
