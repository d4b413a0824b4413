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
import { fetchAdmitSubject } from '@lib/ratelimit';
import { JobsService } from '../jobs/jobs.service';
import { BacklogGate } from '../limits/backlog-gate';
import { IdempotencyService } from '../limits/idempotency.service';
import { RequestNormalizer } from './request-normalizer';
import { PendingWait, SyncWaiter } from './sync-waiter.service';

export interface SubmitOptions {
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  /** `Prefer: respond-async`: answer 202 at once. */
  respondAsync: boolean;
  /** `Prefer: wait=N` in ms, capped by SYNC_TIMEOUT_MS. */
  waitMs?: number;
  /** `Idempotency-Key` header, if sent. */
  idempotencyKey?: string;
  /** Whose idempotency keys these are (clientScope). */
  clientScope: string;
  /** The request's x-request-id, carried into the job for the worker's log lines. */
  requestId?: string;
}

export type SubmitOutcome = ({ kind: 'done'; response: RawInferenceResponse } | { kind: 'accepted'; reference: JobReference }) & {
  /** The answer is that of an earlier request with the same Idempotency-Key. */
  replayed?: boolean;
};

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
    private readonly idempotency: IdempotencyService,
    private readonly backlog: BacklogGate,
  ) {}

  async submit(body: RawInferenceRequest, options: SubmitOptions): Promise<SubmitOutcome> {
    // Cheap checks first: a bad request is refused before any Redis write.
    const checked = this.normalizer.check(body);
    const { entry } = checked;
    const waitMs = Math.min(options.waitMs ?? this.config.syncTimeoutMs, this.config.syncTimeoutMs);
    const wait = !options.respondAsync && waitMs > 0 && this.waiter.hasRoom();

    let jobId = newJobId(entry.queue);
    const key = options.idempotencyKey;
    if (key !== undefined) {
      const claim = await this.idempotency.claim(options.clientScope, key, entry.queue, body);
      jobId = claim.jobId;
      if (claim.replay) return { ...(await this.replay(jobId, options.respondAsync, wait ? waitMs : 0, options.receivedAt)), replayed: true };
    }
    try {
      await this.backlog.admit(entry.queue);
    } catch (err) {
      if (key !== undefined) await this.idempotency.release(options.clientScope, key).catch(() => undefined);
      throw err;
    }
    const { request, blobs } = await this.normalizer.normalize(body, checked, jobId);
    const semanticCache = body.enable_semantic_cache === true;
    // `admit` first: the worker's fetch reads it from the head of the data (InferenceJobData.admit).
    const data: InferenceJobData = {
      admit: fetchAdmitSubject(request, semanticCache),
      request,
      receivedAt: options.receivedAt,
      notify: wait ? this.waiter.channel : undefined,
      requestId: options.requestId,
    };
    if (semanticCache) data.semanticCache = { delta: body.cache_delta ?? null };
    const pending: PendingWait | undefined = wait ? this.waiter.register(jobId, waitMs) : undefined;
    try {
      await this.queues.get(entry.queue).add(JobName.Inference, data, inferenceJobOptions(this.config, jobId));
    } catch (err) {
      pending?.cancel();
      await this.blobs.delete(blobs).catch(() => undefined);
      if (key !== undefined) await this.idempotency.release(options.clientScope, key).catch(() => undefined);
      this.logger.error(`enqueue on ${entry.queue} failed: ${(err as Error).message}`);
      throw new GatewayError(ErrorType.ServiceUnavailable, 'The job queue is unavailable; try again shortly', 'queue_unavailable');
    }
    if (!pending) return { kind: 'accepted', reference: reference(jobId, JobStatus.Pending) };
    return this.await(jobId, pending, options.receivedAt);
  }

  /**
   * The answer of the job an Idempotency-Key already stands for: its reference when the client
   * prefers async, its result or error when it has ended, else a wait like any request's (the job may not even be enqueued yet, when the
   * first request with this key is still on its way).
   */
  private async replay(jobId: string, respondAsync: boolean, waitMs: number, receivedAt: number): Promise<SubmitOutcome> {
    const view = await this.jobs.view(jobId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === 'job_not_found') return undefined;
      throw err;
    });
    if (respondAsync) return { kind: 'accepted', reference: reference(jobId, view?.status ?? JobStatus.Pending) };
    if (view?.status === JobStatus.Completed && view.result) return { kind: 'done', response: view.result };
    if (view && (view.status === JobStatus.Failed || view.status === JobStatus.Canceled) && view.error) throw GatewayError.fromDetail(view.error);
    if (waitMs <= 0 || !this.waiter.hasRoom()) return { kind: 'accepted', reference: reference(jobId, view?.status ?? JobStatus.Pending) };
    return this.await(jobId, this.waiter.register(jobId, waitMs), receivedAt);
  }

  private async await(jobId: string, pending: PendingWait, receivedAt: number): Promise<SubmitOutcome> {
    const outcome = await pending.promise;
    switch (outcome.kind) {
      case 'completed':
        return { kind: 'done', response: { ...outcome.result, latency_ms: Date.now() - receivedAt } };
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
