import { ErrorType, JobFailure } from '@lib/contracts';
import { upstreamStatusOf } from './upstream-status';

const failure = (code: string, details?: Record<string, unknown>): JobFailure => ({
  error: { type: ErrorType.ServiceUnavailable, message: 'm', code, details },
  retryable: true,
});

describe('upstreamStatusOf', () => {
  it("is the provider's HTTP status when it answered", () => {
    expect(upstreamStatusOf(failure('provider_unavailable', { provider: 'openai', provider_status: 500 }))).toBe('500');
    expect(upstreamStatusOf(failure('provider_rate_limited', { provider_status: 429 }))).toBe('429');
    expect(upstreamStatusOf(failure('provider_rejected_input', { provider_status: 400 }))).toBe('400');
  });

  it('is timeout / network when it did not', () => {
    expect(upstreamStatusOf(failure('provider_timeout'))).toBe('timeout');
    expect(upstreamStatusOf(failure('provider_unreachable'))).toBe('network');
  });

  it('is undefined for failures that are not the provider call: media, cancel, our bugs, unknown formats', () => {
    expect(upstreamStatusOf(failure('media_too_large'))).toBeUndefined();
    expect(upstreamStatusOf(failure('job_canceled'))).toBeUndefined();
    expect(upstreamStatusOf(failure('internal_error'))).toBeUndefined();
    expect(upstreamStatusOf(undefined)).toBeUndefined();
  });
});
