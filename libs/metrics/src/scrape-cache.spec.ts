import { ScrapeCache } from './scrape-cache';

describe('ScrapeCache', () => {
  it('reads once per period, and shares a read between concurrent callers', async () => {
    let now = 1000;
    let reads = 0;
    const cache = new ScrapeCache(async () => ++reads, 500, () => now);
    expect(await Promise.all([cache.get(), cache.get()])).toEqual([1, 1]);
    now += 499;
    expect(await cache.get()).toBe(1);
    now += 1;
    expect(await cache.get()).toBe(2);
    expect(reads).toBe(2);
  });

  it('does not keep a failed read', async () => {
    let fail = true;
    const cache = new ScrapeCache(async () => {
      if (fail) throw new Error('redis down');
      return 'ok';
    }, 60_000);
    await expect(cache.get()).rejects.toThrow('redis down');
    fail = false;
    await expect(cache.get()).resolves.toBe('ok');
  });
});
