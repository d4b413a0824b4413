/**
 * Thrown by a processor for a failure worth another attempt (429, 5xx, timeout, network).
 * `retryAfterMs` is the provider's own hint; the backoff below honours it.
 */
export class RetryableJobError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RetryableJobError';
  }
}

export const GATEWAY_BACKOFF = 'gateway';

export interface BackoffSettings {
  /** First delay in ms; doubles per attempt. */
  baseDelayMs: number;
  /** Cap on one delay in ms, also applied to a provider's retry-after. */
  maxDelayMs: number;
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random), capped. A provider's
 * retry-after wins when given, plus up to 10% jitter so that the jobs it sent back do not all
 * return in the same millisecond; we never call back before the provider said to.
 */
export function retryDelayMs(attemptsMade: number, settings: BackoffSettings, err?: unknown, random = Math.random): number {
  const hint = err instanceof RetryableJobError ? err.retryAfterMs : undefined;
  const exp = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** Math.max(0, attemptsMade - 1));
  const jittered = Math.round(exp / 2 + random() * (exp / 2));
  if (hint !== undefined && hint > 0) return Math.min(settings.maxDelayMs, Math.round(hint + random() * hint * 0.1));
  return jittered;
}
