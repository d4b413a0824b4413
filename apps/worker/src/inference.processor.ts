import { Inject, Injectable, Logger } from '@nestjs/common';
import { Job, UnrecoverableError, WaitingError } from 'bullmq';
import type IORedis from 'ioredis';
import {
  CANCELED_FAILURE,
  encodeFailure,
  ErrorType,
  GatewayError,
  InferenceJobData,
  JobFailure,
  packResult,
  RawInferenceResponse,
  TokensUsed,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { classifyProviderError } from '@lib/providers';
import { MediaError } from '@lib/media';
import { BlobStore, REDIS, RedisKeys, RetryableJobError } from '@lib/queue';
import { AdapterRegistry } from './adapter-registry';
import { CancelRegistry } from './cancel-registry';
import { EmbeddingRunner, isControlError } from './embedding-runner';
import { JobMedia } from './job-media';
import { LongMediaService } from './long-media.service';
import { RateGate } from './rate-gate';
import { SemanticCacheService } from './semantic-cache.service';

/** Abort reasons the worker host gives BullMQ's job signal. */
export const ABORT_CANCELED = 'canceled';
export const ABORT_SHUTDOWN = 'shutdown';

/**
 * Runs one inference job: reads the job, passes the provider's shared rate limits, calls the
 * provider's adapter, returns the response to store. Every failure leaves as RetryableJobError
 * (BullMQ retries it with the gateway's backoff), UnrecoverableError (no retry), WaitingError
 * (handed back on shutdown) or DelayedError (asleep until its rate-limit slot or a 429 pause).
 */
@Injectable()
export class InferenceProcessor {
  private readonly logger = new Logger(InferenceProcessor.name);

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: IORedis,
    private readonly keys: RedisKeys,
    private readonly blobs: BlobStore,
    private readonly adapters: AdapterRegistry,
    private readonly cancels: CancelRegistry,
    private readonly gate: RateGate,
    private readonly embeddings: EmbeddingRunner,
    private readonly longMedia: LongMediaService,
    private readonly semanticCache: SemanticCacheService,
  ) {}

  async process(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, signal: AbortSignal): Promise<RawInferenceResponse> {
    const { request, receivedAt } = job.data;
    if (await this.wasCanceled(job)) throw new UnrecoverableError(encodeFailure(CANCELED_FAILURE));
    const adapter = this.adapters.get(request.provider);
    if (!adapter) {
      throw new UnrecoverableError(
        encodeFailure({
          error: { type: ErrorType.ServiceUnavailable, message: `This worker has no ${request.provider} adapter configured`, code: 'provider_not_configured' },
          retryable: false,
        }),
      );
    }
    if (this.embeddings.handles(request)) {
      // Text embeddings: split, exact cache, coalescing (embedding-runner.ts); errors classified here.
      try {
        return await this.embeddings.process(job, token, signal);
      } catch (err) {
        throw isControlError(err) ? err : await this.toJobError(err, job, token, signal);
      }
    }
    // Chat with enable_semantic_cache: a cached answer, or a fresh one the cache learns from (semantic-cache.service.ts).
    const semantic = await this.semanticCache.lookup(job.data, signal);
    if (semantic.response) return semantic.response;
    const media = new JobMedia(request.inputs, this.blobs, this.config, signal);
    if (this.longMedia.handles(job)) {
      // Long audio/video: cut into child jobs and merged (long-media.service.ts), or passed on with its file in `media`.
      try {
        const merged = await this.longMedia.process(job, token, media, signal);
        if (merged) return merged;
      } catch (err) {
        await media.cleanup();
        throw isControlError(err) ? err : await this.toJobError(err, job, token, signal);
      }
    }
    const ticket = await this.gate.enter(job, token).catch(async (err: unknown) => {
      await media.cleanup();
      throw err;
    });
    let usage: TokensUsed | null | undefined;
    try {
      const progress = (value: number | object): void => void job.updateProgress(value).catch(() => undefined);
      const out = await adapter.run(request, { signal, media, progress });
      usage = out.tokensUsed;
      semantic.record?.(out.data);
      if (job.parent) void this.longMedia.childDone(job).catch(() => undefined);
      return packResult({
        data: out.data,
        provider: request.provider,
        model: request.model,
        tokens_used: out.tokensUsed ?? null,
        latency_ms: Date.now() - receivedAt,
        cached: false,
      });
    } catch (err) {
      throw await this.toJobError(err, job, token, signal);
    } finally {
      // Not awaited: the lease and the token count are settled while the result is stored.
      void this.gate.leave(ticket, usage);
      await media.cleanup();
    }
  }

  /**
   * A first attempt is checked in memory; a re-run (retry, stall) also asks Redis. A child job
   * (a part of long media) also ends when its parent was canceled: a part enqueued by a parent
   * still cutting after the cancel listed its children is missed by that list, but the parent's
   * flag was set before the list was read.
   */
  private async wasCanceled(job: Job): Promise<boolean> {
    const parent = job.parent?.id;
    if (this.cancels.has(job.id!) || (parent !== undefined && this.cancels.has(parent))) return true;
    if (parent !== undefined && (await this.redis.exists(this.keys.cancelFlag(parent))) === 1) return true;
    return job.attemptsStarted > 1 && (await this.redis.exists(this.keys.cancelFlag(job.id!))) === 1;
  }

  private async toJobError(err: unknown, job: Job<InferenceJobData>, token: string | undefined, signal: AbortSignal): Promise<Error> {
    if (signal.aborted) {
      if (signal.reason === ABORT_SHUTDOWN && token) {
        // Hand the job back untouched: another worker runs it, no attempt is charged.
        await job.moveToWait(token);
        return new WaitingError();
      }
      return new UnrecoverableError(encodeFailure(CANCELED_FAILURE));
    }
    if (err instanceof GatewayError) return this.permanent({ error: err.toDetail(), retryable: false });
    if (err instanceof MediaError) {
      const failure: JobFailure = { error: { type: ErrorType.BadRequest, message: err.message, code: err.code, details: err.details }, retryable: err.retryable };
      return err.retryable ? this.retryable(failure, job) : this.permanent(failure);
    }
    const { failure, retryAfterMs } = classifyProviderError(job.data.request.provider, err);
    if (!failure.retryable) {
      if (failure.error.code === 'internal_error') this.logger.error(`job ${job.id}: ${(err as Error)?.stack ?? String(err)}`);
      return this.permanent(failure);
    }
    if (failure.error.code === 'provider_rate_limited') {
      const requeued = await this.gate.sitOut(job, token, retryAfterMs);
      if (requeued) return requeued;
    }
    return this.retryable(failure, job, retryAfterMs);
  }

  private permanent(failure: JobFailure): Error {
    return new UnrecoverableError(encodeFailure(failure));
  }

  /** On the last attempt the message says so, since that is the error the client will read. */
  private retryable(failure: JobFailure, job: Job, retryAfterMs?: number): Error {
    const attempts = job.opts.attempts ?? 1;
    const last = job.attemptsMade + 1 >= attempts;
    const error = last ? { ...failure.error, message: `${failure.error.message} (gave up after ${attempts} attempts)` } : failure.error;
    return new RetryableJobError(encodeFailure({ ...failure, error }), retryAfterMs);
  }
}
