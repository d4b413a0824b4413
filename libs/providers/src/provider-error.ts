import { ErrorDetail, ErrorType, JobFailure } from '@lib/contracts';

/**
 * Retryable vs permanent, decided in one place for every provider (STYLE.md, rule 4):
 * - the provider rejects the input (400/404/409/413/415/422): permanent, a 400 to the client
 *   carrying the provider's message;
 * - the provider rejects our credentials (401/403): permanent, a 500 `provider_auth_failed`
 *   that never repeats the provider's text (it may quote part of the key);
 * - 408, 429, 5xx (and Anthropic's 529), timeouts and network errors: retryable; when the
 *   attempts run out the client sees 503 (504 for timeouts) with the last provider message.
 * Anything else is a bug of ours: a permanent 500 with no internals.
 */
export interface Classified {
  failure: JobFailure;
  /** The provider's own "call me again in" hint, in ms. */
  retryAfterMs?: number;
}

/** What an SDK error looks like from the outside; every official SDK fits this shape. */
interface SdkErrorLike {
  name?: string;
  message?: string;
  status?: number;
  code?: number | string;
  headers?: unknown;
  error?: unknown;
}

const PERMANENT_INPUT = new Set([400, 404, 409, 413, 415, 422]);

export function classifyProviderError(provider: string, err: unknown): Classified {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorLike;
  const status = typeof e.status === 'number' ? e.status : undefined;
  const text = redactSecrets(providerMessage(e));

  if (status !== undefined && PERMANENT_INPUT.has(status)) {
    return permanent({
      type: ErrorType.BadRequest,
      message: `${provider} rejected the request: ${text}`,
      code: 'provider_rejected_input',
      details: { provider, provider_status: status },
    });
  }
  if (status === 401 || status === 403) {
    return permanent({
      type: ErrorType.Internal,
      message: `${provider} rejected the gateway's credentials (HTTP ${status}); the operator must check the ${provider} API key configuration`,
      code: 'provider_auth_failed',
      details: { provider, provider_status: status },
    });
  }
  if (status !== undefined && (status === 408 || status === 429 || status >= 500)) {
    return retryable(
      {
        type: ErrorType.ServiceUnavailable,
        message: `${provider} is unavailable (HTTP ${status}): ${text}`,
        code: status === 429 ? 'provider_rate_limited' : 'provider_unavailable',
        details: { provider, provider_status: status },
      },
      retryAfterMs(e.headers),
    );
  }
  if (isTimeout(e)) {
    return retryable({
      type: ErrorType.Timeout,
      message: `${provider} did not answer in time`,
      code: 'provider_timeout',
      details: { provider },
    });
  }
  if (isNetworkError(e)) {
    return retryable({
      type: ErrorType.ServiceUnavailable,
      message: `${provider} could not be reached: ${text}`,
      code: 'provider_unreachable',
      details: { provider },
    });
  }
  if (status !== undefined) {
    return permanent({
      type: ErrorType.BadRequest,
      message: `${provider} answered HTTP ${status}: ${text}`,
      code: 'provider_error',
      details: { provider, provider_status: status },
    });
  }
  return permanent({ type: ErrorType.Internal, message: 'Inference failed inside the gateway', code: 'internal_error' });
}

function permanent(error: ErrorDetail): Classified {
  return { failure: { error, retryable: false } };
}

function retryable(error: ErrorDetail, retryAfter?: number): Classified {
  return { failure: { error, retryable: true }, retryAfterMs: retryAfter };
}

function providerMessage(e: SdkErrorLike): string {
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const fromBody = body?.message ?? body?.error?.message;
  if (typeof fromBody === 'string' && fromBody) return fromBody;
  const msg = e.message ?? 'no message';
  // The SDKs prefix the status ("400 Invalid ..."): drop it, the status is reported apart.
  return msg.replace(/^\d{3}\s+/, '');
}

/** The SDKs name their error classes well but leave `name` as plain "Error". */
function kindOf(e: SdkErrorLike): string {
  return `${e.name ?? ''} ${(e as object).constructor?.name ?? ''}`;
}

function isTimeout(e: SdkErrorLike): boolean {
  return /timeout|timed out/i.test(kindOf(e)) || /timed? ?out/i.test(e.message ?? '') || e.code === 'ETIMEDOUT';
}

function isNetworkError(e: SdkErrorLike): boolean {
  return (
    /connection/i.test(kindOf(e)) ||
    ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_SOCKET'].includes(String(e.code)) ||
    /ECONNREFUSED|ECONNRESET|socket hang up|fetch failed|other side closed/i.test(e.message ?? '')
  );
}

function header(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * `retry-after-ms`, then `retry-after` (seconds or an HTTP date), then the reset time of the
 * exhausted budget in the providers' rate-limit headers, in ms.
 */
export function retryAfterMs(headers: unknown, now = Date.now()): number | undefined {
  const ms = Number(header(headers, 'retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = header(headers, 'retry-after');
  if (raw) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(raw);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return rateLimitResetMs(headers, now);
}

/** Budgets the providers report: `<remaining header>` and `<reset header>` of each. */
const RESET_HEADERS: Array<[remaining: string, reset: string]> = [
  // OpenAI: durations such as "1s", "6m0s", "20ms".
  ['x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'],
  ['x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens'],
  // Anthropic: RFC 3339 times.
  ['anthropic-ratelimit-requests-remaining', 'anthropic-ratelimit-requests-reset'],
  ['anthropic-ratelimit-tokens-remaining', 'anthropic-ratelimit-tokens-reset'],
  ['anthropic-ratelimit-input-tokens-remaining', 'anthropic-ratelimit-input-tokens-reset'],
  ['anthropic-ratelimit-output-tokens-remaining', 'anthropic-ratelimit-output-tokens-reset'],
];

/**
 * When the exhausted budget refills: the latest reset among budgets with nothing remaining,
 * or, when none says so, the earliest reset given.
 */
export function rateLimitResetMs(headers: unknown, now = Date.now()): number | undefined {
  let exhausted: number | undefined;
  let earliest: number | undefined;
  for (const [remainingName, resetName] of RESET_HEADERS) {
    const reset = parseReset(header(headers, resetName), now);
    if (reset === undefined) continue;
    if (header(headers, remainingName)?.trim() === '0') exhausted = Math.max(exhausted ?? 0, reset);
    earliest = Math.min(earliest ?? Infinity, reset);
  }
  return exhausted ?? earliest;
}

function parseReset(raw: string | undefined, now: number): number | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  const duration = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(value);
  if (duration && duration.slice(1).some((p) => p !== undefined)) {
    const [h, m, sec, ms] = duration.slice(1).map((p) => Number(p ?? 0));
    return Math.ceil(h * 3_600_000 + m * 60_000 + sec * 1000 + ms);
  }
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

const SECRET_PATTERNS = [/sk-[A-Za-z0-9_\-*]{6,}/g, /(Bearer\s+)[^\s"']+/gi, /(api[_-]?key["'=:\s]+)[^\s"',]+/gi, /AIza[0-9A-Za-z_-]{20,}/g];

/** Strips anything that looks like a credential from text that may reach a client or a log. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (match, prefix?: string) => (typeof prefix === 'string' ? `${prefix}***` : '***'));
  }
  return out;
}
