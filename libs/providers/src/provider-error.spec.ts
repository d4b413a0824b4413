import { classifyProviderError, rateLimitResetMs, redactSecrets, retryAfterMs } from './provider-error';

class FakeApiError extends Error {
  constructor(
    readonly status: number | undefined,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}
class APIConnectionError extends Error {}
class APIConnectionTimeoutError extends Error {}

describe('classifyProviderError', () => {
  it.each([400, 404, 409, 413, 415, 422])('HTTP %i is permanent and a 400 for the client', (status) => {
    const { failure } = classifyProviderError('openai', new FakeApiError(status, `${status} bad input`));
    expect(failure.retryable).toBe(false);
    expect(failure.error).toMatchObject({ type: 'BadRequestError', code: 'provider_rejected_input', message: 'openai rejected the request: bad input' });
  });

  it.each([401, 403])('HTTP %i is permanent, a 500 that never repeats the provider text', (status) => {
    const { failure } = classifyProviderError('openai', new FakeApiError(status, 'Incorrect API key provided: sk-abcdef123456'));
    expect(failure).toMatchObject({ retryable: false, error: { type: 'InternalServerError', code: 'provider_auth_failed' } });
    expect(JSON.stringify(failure)).not.toContain('sk-abc');
  });

  it.each([408, 429, 500, 502, 503, 529])('HTTP %i is retryable', (status) => {
    const { failure } = classifyProviderError('anthropic', new FakeApiError(status, 'busy'));
    expect(failure.retryable).toBe(true);
    expect(failure.error.type).toBe('InferenceServiceUnavailableError');
    expect(failure.error.code).toBe(status === 429 ? 'provider_rate_limited' : 'provider_unavailable');
  });

  it('reads retry-after from a 429', () => {
    expect(classifyProviderError('openai', new FakeApiError(429, 'slow down', { 'retry-after': '2' })).retryAfterMs).toBe(2000);
  });

  it('timeouts and connection errors are retryable, by class name', () => {
    expect(classifyProviderError('openai', new APIConnectionTimeoutError('Request timed out.')).failure.error.code).toBe('provider_timeout');
    expect(classifyProviderError('openai', new APIConnectionError('Connection error.')).failure).toMatchObject({
      retryable: true,
      error: { code: 'provider_unreachable' },
    });
  });

  it('our own bugs are a permanent 500 with no internals', () => {
    const { failure } = classifyProviderError('openai', new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(failure).toEqual({ retryable: false, error: { type: 'InternalServerError', message: 'Inference failed inside the gateway', code: 'internal_error' } });
  });
});

describe('retryAfterMs', () => {
  it('prefers retry-after-ms, then seconds, then an HTTP date', () => {
    expect(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    expect(retryAfterMs({ 'retry-after': '1.5' })).toBe(1500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }, now)).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after': '4' }))).toBe(4000);
    expect(retryAfterMs({})).toBeUndefined();
  });
});

describe('redactSecrets', () => {
  it('removes keys and bearer tokens', () => {
    expect(redactSecrets('key sk-proj-abcdefghij123 and Bearer abc.def and api_key=xyz123')).toBe('key *** and Bearer *** and api_key=***');
  });
});

describe('retryAfterMs from rate-limit headers', () => {
  const now = Date.parse('2026-11-26T10:00:00Z');

  it('prefers retry-after-ms, then retry-after', () => {
    expect(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9', 'x-ratelimit-reset-requests': '30s' }, now)).toBe(250);
    expect(retryAfterMs({ 'retry-after': '2', 'x-ratelimit-reset-requests': '30s' }, now)).toBe(2000);
  });

  it("reads OpenAI's reset durations, taking the exhausted budget", () => {
    const headers = {
      'x-ratelimit-remaining-requests': '12',
      'x-ratelimit-reset-requests': '120ms',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '6m0.5s',
    };
    expect(retryAfterMs(headers, now)).toBe(360_500);
    expect(rateLimitResetMs({ 'x-ratelimit-reset-requests': '1h2m3s' }, now)).toBe(3_723_000);
    expect(rateLimitResetMs({ 'x-ratelimit-reset-requests': '20ms', 'x-ratelimit-reset-tokens': '2s' }, now)).toBe(20);
  });

  it("reads Anthropic's RFC 3339 reset times", () => {
    const headers = {
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': '2026-11-26T10:00:07Z',
      'anthropic-ratelimit-tokens-remaining': '5000',
      'anthropic-ratelimit-tokens-reset': '2026-11-26T10:00:01Z',
    };
    expect(retryAfterMs(headers, now)).toBe(7000);
  });

  it('gives nothing when no header says anything', () => {
    expect(retryAfterMs({ 'x-ratelimit-reset-requests': 'soon' }, now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
