import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, Job } from 'bullmq';
import { InferenceJobData, queueOfJobId, QueueName, RawInferenceResponse, TokensUsed } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { GatewayMetrics } from '@lib/metrics';
import { Admission, estimateTokens, ProviderLimiter, reportedTokens, Ticket } from '@lib/ratelimit';

/** Without a provider hint, the first 429 pause lasts this long and doubles per repeat. */
export const DEFAULT_PAUSE_MS = 1_000;
/** Even "retry now" waits this long, so a burst of refused jobs does not come straight back. */
export const MIN_PAUSE_MS = 50;
/** A provider's retry-after is honoured up to this long. */
export const MAX_PAUSE_MS = 10 * 60_000;

/**
 * Between a job and its provider call: the shared limiter admits the call now, or the job
 * sleeps in BullMQ's delayed set until its reserved slot. A sleeping job holds no worker slot
 * and is charged no attempt (DelayedError); its slot survives a worker crash because it is
 * recorded in the job (`limiter.prepaidAttempt`).
 */
@Injectable()
export class RateGate {
  private readonly logger = new Logger(RateGate.name);
  /** Told of every admission, with the job's queue: its provider call is about to go out. */
  private readonly admissionListeners: Array<(queue: QueueName) => void> = [];

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly limiter: ProviderLimiter,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** `listener` hears of every admission (the worker host holds its next fetch until then). */
  onAdmission(listener: (queue: QueueName) => void): void {
    this.admissionListeners.push(listener);
  }

  private admitted(queue: QueueName): void {
    for (const listener of this.admissionListeners) listener(queue);
  }

  /**
   * A ticket to call the provider now, or DelayedError after moving the job to its slot.
   * `tokens` overrides the estimate from the request (the embedding path sends only the texts
   * the exact cache missed).
   */
  async enter(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, tokens?: number): Promise<Ticket> {
    const { request } = job.data;
    const queue = queueOf(job);
    const state = job.data.limiter ?? {};
    const limits = this.limiter.limitsOf(queue);
    const admission = await this.limiter.acquire({
      queue,
      model: request.model,
      tokens: tokens ?? estimateTokens(request, limits?.defaultMaxTokens ?? 0),
      leaseId: job.id!,
      prepaid: state.prepaidAttempt === job.attemptsMade,
    });
    if (admission.admitted) {
      this.admitted(queue);
      return admission.ticket;
    }
    await this.defer(job, token, admission);
    throw new DelayedError();
  }

  /**
   * One admission for a coalesced group of jobs (one provider call): one request and the sum
   * of their tokens, charged once. Prepaid only when every member holds a slot for its attempt
   * (the coalescer groups such jobs apart from new ones).
   * Not admitted: every member is moved to the slot (as `enter` does for one job) and undefined
   * is returned; each member must then throw DelayedError. The group's lease is named after its
   * first job.
   */
  async enterGroup(members: Array<{ job: Job<InferenceJobData, RawInferenceResponse>; token: string | undefined }>, tokens: number): Promise<Ticket | undefined> {
    const first = members[0].job;
    const admission = await this.limiter.acquire({
      queue: queueOf(first),
      model: first.data.request.model,
      tokens,
      leaseId: first.id!,
      prepaid: members.every(({ job }) => job.data.limiter?.prepaidAttempt === job.attemptsMade),
    });
    if (admission.admitted) {
      this.admitted(queueOf(first));
      return admission.ticket;
    }
    await Promise.all(members.map(({ job, token }) => this.defer(job, token, admission)));
    return undefined;
  }

  /** Puts a job to sleep until its slot, recording the slot it holds. */
  private async defer(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, admission: Extract<Admission, { admitted: false }>): Promise<void> {
    const queue = queueOf(job);
    const state = job.data.limiter ?? {};
    this.metrics.rateLimitWait(queue, job.data.request.model, admission.waitMs, admission.reason);
    if (admission.waitMs > 5_000) {
      this.logger.debug(`job ${job.id}: ${admission.reason} limit, waits ${admission.waitMs} ms for its slot`);
    }
    // A new reservation is this attempt's slot; a pause loses any slot held; waiting for a call
    // slot or for the last minute's sends keeps it.
    const prepaidAttempt = admission.reserved ? job.attemptsMade : admission.reason === 'paused' ? undefined : state.prepaidAttempt;
    if (prepaidAttempt !== state.prepaidAttempt) await job.updateData({ ...job.data, limiter: { ...state, prepaidAttempt } });
    await job.moveToDelayed(Date.now() + admission.waitMs, token);
  }

  /** Frees the concurrency lease and reconciles the token estimate with reported usage. */
  async leave(ticket: Ticket, usage: TokensUsed | null | undefined): Promise<void> {
    await this.limiter.settle(ticket, reportedTokens(usage)).catch((err: Error) => this.logger.warn(`settling job ${ticket.subject.leaseId}: ${err.message}`));
  }

  /**
   * After a provider 429: pause the model for every worker and put the job back until the pause
   * ends, uncharged. Returns the error to throw, or undefined once the job has sat out
   * RATE_LIMIT_MAX_REQUEUES pauses (the 429 then counts as a failed attempt).
   */
  async sitOut(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, retryAfterMs: number | undefined): Promise<Error | undefined> {
    const state = job.data.limiter ?? {};
    const requeues = state.requeues ?? 0;
    if (!token || requeues >= this.config.rateLimitMaxRequeues) return undefined;
    const queue = queueOf(job);
    const pauseMs = Math.min(MAX_PAUSE_MS, retryAfterMs !== undefined ? Math.max(MIN_PAUSE_MS, retryAfterMs) : DEFAULT_PAUSE_MS * 2 ** Math.min(requeues, 9));
    await this.limiter.pause(queue, job.data.request.model, pauseMs);
    this.metrics.upstreamError(queue, '429');
    this.metrics.rateLimitPause(queue, job.data.request.model, pauseMs);
    this.logger.log(`${queue} ${job.data.request.model} answered 429: paused for ${pauseMs} ms on every worker`);
    // The job comes back a little after the pause ends, re-reserving its slot then.
    await job.updateData({ ...job.data, limiter: { requeues: requeues + 1 } });
    await job.moveToDelayed(Date.now() + pauseMs + Math.round(Math.random() * Math.min(1_000, pauseMs * 0.1)), token);
    return new DelayedError();
  }
}

function queueOf(job: Job): QueueName {
  const queue = queueOfJobId(job.id!);
  if (!queue) throw new Error(`job id ${job.id} names no queue`);
  return queue;
}
