/**
 * Bounds the distinct values a metric label takes. Model names come from clients, and every
 * new value is a new time series in Prometheus: past `maxPerGroup` values per group (per
 * provider), further ones are reported as `other`. Long values are cut, since a label is kept
 * in memory for the life of the process.
 */
export class LabelLimiter {
  static readonly OVERFLOW = 'other';
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    private readonly maxPerGroup: number,
    private readonly maxLength = 100,
  ) {}

  limit(group: string, value: string): string {
    const cut = value.length > this.maxLength ? value.slice(0, this.maxLength) : value;
    let values = this.seen.get(group);
    if (!values) {
      values = new Set();
      this.seen.set(group, values);
    }
    if (values.has(cut)) return cut;
    if (values.size >= this.maxPerGroup) return LabelLimiter.OVERFLOW;
    values.add(cut);
    return cut;
  }
}
