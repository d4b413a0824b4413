/**
 * Keeps the result of an expensive read (queue counts from Redis) for `ttlMs`, so that several
 * Prometheus servers, or a scrape every second, cost Redis at most one read per period.
 * Concurrent callers share one read; a failed read is not kept.
 */
export class ScrapeCache<T> {
  private entry?: { at: number; value: Promise<T> };

  constructor(
    private readonly load: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const now = this.now();
    if (this.entry && now - this.entry.at < this.ttlMs) return this.entry.value;
    const value = this.load();
    const entry = { at: now, value };
    this.entry = entry;
    value.catch(() => {
      if (this.entry === entry) this.entry = undefined;
    });
    return value;
  }
}
