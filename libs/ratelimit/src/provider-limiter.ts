import type { Cluster, Redis } from 'ioredis';
import { QueueName } from '@lib/contracts';
import { modelLimits, ProviderLimits, RateLimit, RateLimitsConfig } from '@lib/config';
import { LuaScript } from '@lib/queue';
import { FETCH_ADMIT_LUA, PAUSE_LUA, RESERVE_LUA, SETTLE_LUA } from './limiter-scripts';

const RESERVE = new LuaScript(RESERVE_LUA);
const FETCH_ADMIT = new LuaScript(FETCH_ADMIT_LUA);
const SETTLE = new LuaScript(SETTLE_LUA);
const PAUSE = new LuaScript(PAUSE_LUA);

type RedisLike = Redis | Cluster;

/** What one call asks of the budgets. */
export interface LimitSubject {
  queue: QueueName;
  model: string;
  /** Estimated tokens (estimateTokens). */
  tokens: number;
  /** Names the call's concurrency lease: the job id. */
  leaseId: string;
  /** The job already holds a reserved slot for this attempt: only pauses and concurrency are checked. */
  prepaid: boolean;
  /**
   * Admitted now or refused, never a slot reserved for later: for calls that have a fallback
   * instead of a wait (the semantic cache's embedder and judge). A refusal charges nothing.
   */
  nowOnly?: boolean;
}

export type Admission =
  | { admitted: true; ticket: Ticket }
  /** `reserved`: a slot is bought for the job at now + waitMs; come back then with prepaid (never with nowOnly). */
  | { admitted: false; waitMs: number; reason: WaitReason; reserved: boolean };

/**
 * Why a job must wait: `rate` (a slot is reserved for it), `concurrency` (every call slot is
 * taken), `paused` (a 429 paused the model), `window` (what was sent in the last minute is at
 * the cap, which happens when jobs woke late and bunched up).
 */
export type WaitReason = 'rate' | 'concurrency' | 'paused' | 'window';

const REASONS: Record<number, WaitReason> = { 1: 'rate', 2: 'concurrency', 3: 'paused', 4: 'window' };

/** Held while the call runs; settled once it ends. */
export interface Ticket {
  subject: LimitSubject;
  /** Concurrency sets holding the lease. */
  leaseKeys: string[];
  /** Token budgets charged, with their emission interval and send log. */
  tokenBudgets: Array<{ key: string; log: string; sum: string; emission: number }>;
  refundUnused: boolean;
  /** The send log's window (ms). */
  windowMs: number;
}

export interface ProviderLimiterOptions {
  /** A lease outlives a crashed worker by this much (ms): the provider call timeout plus margin. */
  leaseTtlMs: number;
  /** How long a job waits when every concurrency slot is taken (ms). @defaultValue 250 */
  concurrencyRetryMs?: number;
}

interface Budget {
  /** GCRA TAT. */
  key: string;
  /** What was sent in the last window, and its sum. */
  log: string;
  sum: string;
  emission: number;
  tolerance: number;
  cost: number;
  /** The cap per minute. */
  cap: number;
  tokens: boolean;
}

const MINUTE_MS = 60_000;

/** A job admitted (or not) in the round trip that fetched it (ProviderLimiter.admitOnFetch). */
export interface FetchAdmission {
  jobId: string;
  /** The tokens charged (with default_max_tokens added where it applies). */
  tokens?: number;
  /** Absent when the job carried no limiter subject: it is admitted at the rate gate. */
  admission?: Admission;
}

function admissionOf(waitMs: number, state: number, ticket: Ticket, nowOnly: boolean | undefined): Admission {
  if (state === 0) return { admitted: true, ticket };
  return { admitted: false, waitMs, reason: REASONS[state] ?? 'rate', reserved: state === 1 && !nowOnly };
}

/**
 * Requests per minute, tokens per minute and calls in flight, per provider queue and per
 * model, shared in Redis by every worker (DESIGN.md: limits belong to the provider, not to a
 * worker). A provider's 429 pauses the model for everyone through `pause`.
 */
export class ProviderLimiter {
  private readonly concurrencyRetryMs: number;
  /** fixedFetchArgs by queue and embeddings flag. */
  private readonly fetchPlans = new Map<string, Array<string | number>>();

  constructor(
    private readonly redis: RedisLike,
    private readonly prefix: string,
    private readonly limits: RateLimitsConfig,
    private readonly options: ProviderLimiterOptions,
  ) {
    this.concurrencyRetryMs = options.concurrencyRetryMs ?? 250;
  }

  /** The queue's caps, if the limits file gives any. */
  limitsOf(queue: QueueName): ProviderLimits | undefined {
    return this.limits.providers[queue];
  }

  async acquire(subject: LimitSubject): Promise<Admission> {
    const { keys, args, ticket } = this.plan(subject);
    const [waitMs, state] = (await RESERVE.run(this.redis, keys, args)) as [number, number];
    return admissionOf(waitMs, state, ticket, subject.nowOnly);
  }

  /**
   * Writes FETCH_ADMIT on `client` (a worker's blocking connection, right behind the fetch that
   * used `token`): the job that fetch hands out is admitted as `acquire` would admit it, in the
   * same round trip. Resolves with undefined when the fetch got no job, with `{ jobId }` alone
   * when the job carries no subject (the API did not mark it: it goes through `acquire`).
   */
  async admitOnFetch(
    client: Redis,
    queue: QueueName,
    queueKeys: { active: string; jobPrefix: string },
    token: string,
    options: { embeddings: boolean },
  ): Promise<FetchAdmission | undefined> {
    const args = [queueKeys.jobPrefix, token, ...this.fetchArgs(queue, options.embeddings)];
    const answer = (await FETCH_ADMIT.run(client, [queueKeys.active], args)) as
      | null
      | [string]
      | [string, number, number, string, number];
    if (!answer) return undefined;
    const [jobId, waitMs, state, model, tokens] = answer;
    if (state === undefined) return { jobId };
    const { ticket } = this.plan({ queue, model: model!, tokens: tokens!, leaseId: jobId, prepaid: false });
    return { jobId, tokens, admission: admissionOf(waitMs!, state, ticket, false) };
  }

  /**
   * FETCH_ADMIT's arguments after the job key prefix and the token (see limiter-scripts.ts).
   * Written on every fetch: all but the jittered retry time are made once per queue.
   */
  private fetchArgs(queue: QueueName, embeddings: boolean): Array<string | number> {
    const key = `${queue}:${embeddings}`;
    let fixed = this.fetchPlans.get(key);
    if (!fixed) {
      fixed = this.fixedFetchArgs(queue, embeddings);
      this.fetchPlans.set(key, fixed);
    }
    return [fixed[0], fixed[1], this.concurrencyRetry(), ...fixed.slice(2)];
  }

  /** fetchArgs without the retry time (between leaseTtlMs and windowMs). */
  private fixedFetchArgs(queue: QueueName, embeddings: boolean): Array<string | number> {
    const provider = this.limits.providers[queue];
    const scope = (limit: RateLimit): number[] => {
      const numbers = (perMinute: number | undefined) => {
        if (!perMinute) return [0, 0, 0];
        const b = budget(() => '', perMinute, provider!.headroom, 1, false);
        return [b.emission, b.tolerance, b.cap];
      };
      return [...numbers(limit.rpm), ...numbers(limit.tpm), limit.concurrency ?? 0];
    };
    const models = provider ? Object.entries(provider.models) : [];
    return [
      this.key(queue, ''),
      this.options.leaseTtlMs,
      MINUTE_MS + (provider?.jitterMs ?? 0),
      provider?.defaultMaxTokens ?? 0,
      embeddings ? 1 : 0,
      provider ? 1 : 0,
      models.length,
      ...(provider ? scope(provider) : [0, 0, 0, 0, 0, 0, 0]),
      ...models.flatMap(([name, limit]) => [name, ...scope(limit)]),
    ];
  }

  /** The keys and arguments of RESERVE for `subject`, and the ticket an admission gives it. */
  private plan(subject: LimitSubject): { keys: string[]; args: Array<string | number>; ticket: Ticket } {
    const provider = this.limits.providers[subject.queue];
    const model = provider ? modelLimits(provider, subject.model) : undefined;
    const scopes = this.scopes(subject, provider, model);
    const budgets = scopes.flatMap((s) => s.budgets);
    const leases = scopes.filter((s) => s.concurrency !== undefined);
    const pauses = [this.key(subject.queue, 'pause'), this.key(subject.queue, `m:${subject.model}:pause`)];
    const windowMs = MINUTE_MS + (provider?.jitterMs ?? 0);
    const ticket: Ticket = {
      subject,
      leaseKeys: leases.map((s) => s.concurrencyKey),
      tokenBudgets: budgets.filter((b) => b.tokens).map((b) => ({ key: b.key, log: b.log, sum: b.sum, emission: b.emission })),
      refundUnused: provider?.refundUnusedTokens ?? false,
      windowMs,
    };
    const keys = [...budgets.map((b) => b.key), ...budgets.map((b) => b.log), ...budgets.map((b) => b.sum), ...pauses, ...ticket.leaseKeys];
    const args = [
      subject.prepaid ? 1 : subject.nowOnly ? 2 : 0,
      budgets.length,
      pauses.length,
      leases.length,
      subject.leaseId,
      this.options.leaseTtlMs,
      this.concurrencyRetry(),
      windowMs,
      ...budgets.flatMap((b) => [b.emission, b.tolerance, b.cost, b.cap]),
      ...leases.map((s) => s.concurrency!),
    ];
    return { keys, args, ticket };
  }

  /** How long a job waits for a call slot, jittered so that waiting jobs do not come back together. */
  private concurrencyRetry(): number {
    return Math.round(this.concurrencyRetryMs * (0.75 + Math.random() * 0.5));
  }

  /** Frees the concurrency lease and charges (or, where allowed, refunds) the token estimate's error. */
  async settle(ticket: Ticket, reportedTokens: number | undefined): Promise<void> {
    let delta = reportedTokens === undefined ? 0 : reportedTokens - ticket.subject.tokens;
    if (delta < 0 && !ticket.refundUnused) delta = 0;
    await this.settleDelta(ticket, delta);
  }

  /**
   * An admission whose call never went out (its job was canceled first, or is charged by another
   * admission): frees the lease and gives the whole token charge back to the schedule, whatever
   * refund_unused_tokens says, since the provider never saw the request. The request itself stays
   * counted, and the tokens stay in the last minute's send log (both err on the safe side).
   */
  async release(ticket: Ticket): Promise<void> {
    await this.settleDelta(ticket, -ticket.subject.tokens);
  }

  private async settleDelta(ticket: Ticket, delta: number): Promise<void> {
    const budgets = delta === 0 ? [] : ticket.tokenBudgets;
    if (ticket.leaseKeys.length === 0 && budgets.length === 0) return;
    const keys = [...ticket.leaseKeys, ...budgets.flatMap((b) => [b.key, b.log, b.sum])];
    const args = [ticket.subject.leaseId, ticket.leaseKeys.length, budgets.length, ticket.windowMs, ...budgets.flatMap((b) => [b.emission, delta])];
    await SETTLE.run(this.redis, keys, args);
  }

  /** After a provider's 429: nobody calls this model again for `ms`. */
  async pause(queue: QueueName, model: string, ms: number): Promise<void> {
    const keys = [this.key(queue, `m:${model}:pause`)];
    await PAUSE.run(this.redis, keys, [Math.max(1, Math.round(ms))]);
  }

  private scopes(subject: LimitSubject, provider: ProviderLimits | undefined, model: RateLimit | undefined) {
    const out: Array<{ budgets: Budget[]; concurrency?: number; concurrencyKey: string }> = [];
    if (!provider) return out;
    const { headroom } = provider;
    const scope = (limit: RateLimit, name: string) => {
      const budgets: Budget[] = [];
      if (limit.rpm) budgets.push(budget((w) => this.key(subject.queue, `${name}rpm:${w}`), limit.rpm, headroom, 1, false));
      if (limit.tpm && subject.tokens > 0) budgets.push(budget((w) => this.key(subject.queue, `${name}tpm:${w}`), limit.tpm, headroom, subject.tokens, true));
      out.push({ budgets, concurrency: limit.concurrency, concurrencyKey: this.key(subject.queue, `${name}conc`) });
    };
    scope(provider, '');
    if (model) scope(model, `m:${subject.model}:`);
    return out;
  }

  /** `<prefix>:rl:{<queue>}:<what>`: the hash tag keeps one provider's keys in one Cluster slot. */
  private key(queue: QueueName, what: string): string {
    return `${this.prefix}:rl:{${queue}}:${what}`;
  }
}

/**
 * A cap of `perMinute`: GCRA with emission e = 60 s / (cap (1 - headroom)) and a burst
 * tolerance of headroom x cap units (any 60 s of slots holds at most the cap), and the send log
 * that holds the cap at the moment of sending.
 */
function budget(key: (what: string) => string, perMinute: number, headroom: number, cost: number, tokens: boolean): Budget {
  const emission = MINUTE_MS / (perMinute * (1 - headroom));
  return { key: key('tat'), log: key('log'), sum: key('sum'), emission, tolerance: headroom * perMinute * emission, cost, cap: perMinute, tokens };
}
