import { RetryableJobError, retryDelayMs } from './retry-policy';

describe('retryDelayMs', () => {
  const settings = { baseDelayMs: 1000, maxDelayMs: 10_000 };

  it('doubles per attempt with up to half of it as jitter', () => {
    expect(retryDelayMs(1, settings, undefined, () => 0)).toBe(500);
    expect(retryDelayMs(1, settings, undefined, () => 1)).toBe(1000);
    expect(retryDelayMs(3, settings, undefined, () => 0)).toBe(2000);
    expect(retryDelayMs(3, settings, undefined, () => 1)).toBe(4000);
  });

  it('is capped by maxDelayMs', () => {
    expect(retryDelayMs(20, settings, undefined, () => 1)).toBe(10_000);
  });

  it("never retries before the provider's retry-after, and caps it", () => {
    const hinted = new RetryableJobError('429', 3000);
    expect(retryDelayMs(1, settings, hinted, () => 0)).toBe(3000);
    expect(retryDelayMs(1, settings, hinted, () => 1)).toBe(3300);
    expect(retryDelayMs(1, settings, new RetryableJobError('429', 60_000), () => 0)).toBe(10_000);
  });
});
