/**
 * A provider's own rate limit, as strict as any provider counts: a sliding 60-second log of
 * requests and tokens, refusing a request that would put more than the cap in any 60 s.
 * Used by the fakes to prove the gateway stays under a provider's limit.
 */
export interface ProviderRateLimitOptions {
  /** Requests per minute; 0 or absent = none. */
  rpm?: number;
  /** Tokens per minute; 0 or absent = none. */
  tpm?: number;
}

export interface RateVerdict {
  ok: boolean;
  remainingRequests: number;
  remainingTokens: number;
  /** ms until enough of the window has passed for this request. */
  resetRequestsMs: number;
  resetTokensMs: number;
}

const WINDOW_MS = 60_000;

export class ProviderRateLimit {
  private readonly log: Array<{ at: number; tokens: number }> = [];
  private head = 0;
  private tokensInWindow = 0;
  /** Requests admitted and refused so far. */
  admitted = 0;
  refused = 0;
  tokensAdmitted = 0;
  readonly admittedAt: number[] = [];
  readonly admittedTokens: number[] = [];
  /** When each refusal happened, and which cap it hit. */
  readonly refusals: Array<{ at: number; cap: 'rpm' | 'tpm' }> = [];

  constructor(private readonly opts: ProviderRateLimitOptions) {}

  get enabled(): boolean {
    return Boolean(this.opts.rpm || this.opts.tpm);
  }

  check(tokens: number, now = Date.now()): RateVerdict {
    while (this.head < this.log.length && this.log[this.head].at <= now - WINDOW_MS) this.tokensInWindow -= this.log[this.head++].tokens;
    if (this.head > 4096) {
      this.log.splice(0, this.head);
      this.head = 0;
    }
    const requests = this.log.length - this.head;
    const rpm = this.opts.rpm || Infinity;
    const tpm = this.opts.tpm || Infinity;
    const ok = requests + 1 <= rpm && this.tokensInWindow + tokens <= tpm;
    const verdict: RateVerdict = {
      ok,
      remainingRequests: Math.max(0, Math.min(1e9, rpm - requests - (ok ? 1 : 0))),
      remainingTokens: Math.max(0, Math.min(1e12, tpm - this.tokensInWindow - (ok ? tokens : 0))),
      resetRequestsMs: requests + 1 > rpm ? this.log[this.head + requests - rpm].at + WINDOW_MS - now : 0,
      resetTokensMs: this.resetTokens(tokens, tpm, now),
    };
    if (ok) {
      this.log.push({ at: now, tokens });
      this.tokensInWindow += tokens;
      this.admitted++;
      this.tokensAdmitted += tokens;
      this.admittedAt.push(now);
      this.admittedTokens.push(tokens);
    } else {
      this.refused++;
      this.refusals.push({ at: now, cap: requests + 1 > rpm ? 'rpm' : 'tpm' });
    }
    return verdict;
  }

  private resetTokens(tokens: number, tpm: number, now: number): number {
    let over = this.tokensInWindow + tokens - tpm;
    if (over <= 0) return 0;
    for (let i = this.head; i < this.log.length; i++) {
      over -= this.log[i].tokens;
      if (over <= 0) return this.log[i].at + WINDOW_MS - now;
    }
    return WINDOW_MS;
  }
}
