import { randomUUID } from 'node:crypto';
import { NormalizedRequest, Provider, queueForProvider } from '@lib/contracts';
import { AdapterContext, AdapterResult, classifyProviderError, InferenceAdapter } from '@lib/providers';
import { estimateTokens, ProviderLimiter, reportedTokens } from '@lib/ratelimit';
import { DEFAULT_PAUSE_MS, MAX_PAUSE_MS, MIN_PAUSE_MS } from './rate-gate';

/** Thrown when the limiter has no room for a call right now. */
export class NoRoomNow extends Error {
  constructor(provider: string, model: string, waitMs: number) {
    super(`${provider}:${model} has no room under its rate limits now (next in ${waitMs} ms)`);
  }
}

/**
 * Runs a provider call the semantic cache makes on its own account (embedding a prompt, judging
 * an answer) through the shared limiter like every job's, but never waits and never reserves a
 * later slot: admitted now, or NoRoomNow, and the caller falls back (a miss; the exact
 * comparison). So the cache cannot push a provider past its limits, and a limit that is busy
 * costs a lookup nothing but a miss. The call holds a concurrency lease while it runs, its
 * reported tokens settle the estimate, and a 429 pauses the model for everyone, as a job's do.
 */
export async function runIfRoomNow(limiter: ProviderLimiter, adapter: Pick<InferenceAdapter, 'run'>, request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const queue = queueForProvider(request.provider as Provider);
  const tokens = estimateTokens(request, limiter.limitsOf(queue)?.defaultMaxTokens ?? 0);
  const admission = await limiter.acquire({ queue, model: request.model, tokens, leaseId: `cache-${randomUUID()}`, prepaid: false, nowOnly: true });
  if (!admission.admitted) throw new NoRoomNow(request.provider, request.model, admission.waitMs);
  let reported: number | undefined;
  try {
    const out = await adapter.run(request, ctx);
    reported = reportedTokens(out.tokensUsed);
    return out;
  } catch (err) {
    // A 429 pauses the model for every worker, as a job's does (its retry-after, or 1 s).
    const { failure, retryAfterMs } = classifyProviderError(request.provider, err);
    if (failure.error.code === 'provider_rate_limited') {
      await limiter.pause(queue, request.model, Math.min(MAX_PAUSE_MS, Math.max(MIN_PAUSE_MS, retryAfterMs ?? DEFAULT_PAUSE_MS))).catch(() => undefined);
    }
    throw err;
  } finally {
    // Off the caller's path: an embedding is on the request's.
    void limiter.settle(admission.ticket, reported).catch(() => undefined);
  }
}
