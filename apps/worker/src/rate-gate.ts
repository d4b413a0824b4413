import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { InferenceJobData, LimiterState, queueOfJobId, QueueName, RawInferenceResponse, TokensUsed } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { GatewayMetrics } from '@lib/metrics';
import { Admission, estimateTokens, FetchAdmission, ProviderLimiter, reportedTokens, Ticket } from '@lib/ratelimit';

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
 * recorded in the job (`limiter.prepaidAttempt`). A job the API marked with a limiter subject
 * (`admit`) is usually admitted already by the round trip that fetched it (admitOnFetch); `enter`
 * then takes that answer instead of asking Redis.
 */
@Injectable()
export class RateGate {
  private readonly logger = new Logger(RateGate.name);
  /** Told of every admission, with the job's queue: its provider call is about to go out. */
  private readonly admissionListeners: Array<(queue: QueueName) => void> = [];
  /** Admissions made by a fetch (admitOnFetch), by the fetch's token, until the job takes or drops them. */
  private readonly fetched = new Map<string, Promise<FetchAdmission | undefined>>();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly limiter: ProviderLimiter,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * Text embeddings are admitted on fetch only when nothing here changes what they are charged:
   * no exact cache (hits are not charged) and no coalescing (a group is charged once).
   */
  private get embeddingsOnFetch(): boolean {
    const cache = this.config.embeddingCacheTtlSeconds > 0 && this.config.embeddingCacheMaxEntries > 0;
    return !cache && this.config.coalesceWindowMs <= 0;
  }

  /** `listener` hears of every admission (the worker host holds its next fetch until then). */
  onAdmission(listener: (queue: QueueName) => void): void {
    this.admissionListeners.push(listener);
  }

  private admitted(queue: QueueName): void {
    for (const listener of this.admissionListeners) listener(queue);
  }

  /**
   * Sends the admission of the job that the fetch with `token` hands out, on that fetch's
   * connection right behind it (StartFirstWorker's onFetch): it runs in Redis in the same round
   * trip, and `enter` takes its answer instead of asking the limiter again.
   */
  admitOnFetch(queue: QueueName, client: Redis, token: string, queueKeys: { active: string; jobPrefix: string }): void {
    const answer = this.limiter.admitOnFetch(client, queue, queueKeys, token, { embeddings: this.embeddingsOnFetch }).catch((err: Error) => {
      this.logger.debug(`admission on fetch failed (the rate gate asks again): ${err.message}`);
      return undefined;
    });
    this.fetched.set(token, answer);
    void answer.then((fetched) => {
      if (!fetched) this.fetched.delete(token); // no job came with that fetch
    });
  }

  /**
   * A job that ran with `token` has ended: an admission its fetch made and the job never used
   * (a cancel, a path that never called the provider) gives its call slot and its tokens back.
   */
  dropFetchAdmission(token: string | undefined): void {
    const answer = this.takeFetched(token);
    if (!answer) return;
    void answer.then((fetched) => {
      if (fetched?.admission?.admitted) return this.release(fetched.admission.ticket);
    });
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
    const admission =
      (await this.takeFetchAdmission(job, token, tokens)) ??
      (await this.limiter.acquire({
        queue,
        model: request.model,
        tokens: tokens ?? estimateTokens(request, limits?.defaultMaxTokens ?? 0),
        leaseId: job.id!,
        prepaid: state.prepaidAttempt === job.attemptsMade,
      }));
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

  /** The admission the job's fetch made for it, if it made one. */
  private async takeFetchAdmission(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, tokens: number | undefined): Promise<Admission | undefined> {
    const answer = this.takeFetched(token);
    if (!answer) return undefined;
    const fetched = await answer;
    if (!fetched) return undefined;
    // `tokens` is what the caller charges (the embedding path); the fetch must have charged the same.
    if (fetched.jobId === job.id && (tokens === undefined || !fetched.admission || fetched.tokens === tokens)) return fetched.admission;
    if (fetched.admission?.admitted) void this.release(fetched.admission.ticket); // charged again by acquire
    return undefined;
  }

  /** Removes and returns the answer of the fetch with `token`, if it sent one. */
  private takeFetched(token: string | undefined): Promise<FetchAdmission | undefined> | undefined {
    if (token === undefined) return undefined;
    const answer = this.fetched.get(token);
    this.fetched.delete(token);
    return answer;
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
    if (prepaidAttempt !== state.prepaidAttempt) await job.updateData(withLimiterState(job.data, { ...state, prepaidAttempt }));
    await job.moveToDelayed(Date.now() + admission.waitMs, token);
  }

  /** An admission that no call used: its lease and its tokens go back (ProviderLimiter.release). */
  private async release(ticket: Ticket): Promise<void> {
    await this.limiter.release(ticket).catch((err: Error) => this.logger.warn(`releasing job ${ticket.subject.leaseId}: ${err.message}`));
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
    await job.updateData(withLimiterState(job.data, { requeues: requeues + 1 }));
    await job.moveToDelayed(Date.now() + pauseMs + Math.round(Math.random() * Math.min(1_000, pauseMs * 0.1)), token);
    return new DelayedError();
  }
}

/**
 * The job's data with this limiter state, and without the subject for admission on fetch: a job
 * that holds a slot or sat out a pause comes back to the rate gate, which knows its state.
 */
function withLimiterState({ admit: _admit, ...data }: InferenceJobData, limiter: LimiterState): InferenceJobData {
  return { ...data, limiter };
}

function queueOf(job: Job): QueueName {
  const queue = queueOfJobId(job.id!);
  if (!queue) throw new Error(`job id ${job.id} names no queue`);
  return queue;
}
