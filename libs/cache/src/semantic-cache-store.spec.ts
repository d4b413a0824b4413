import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { decodeObservations, decodeVector, encodeObservation, encodeVector, SemanticCacheStore, storedDot, toHalf } from './semantic-cache-store';
import { dot, normalize, seededRandom } from './vector-index';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** A random unit vector (Gaussian components), like an embedding's. */
function randomUnit(random: () => number, dims: number): Float32Array {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12)));
    const a = 2 * Math.PI * random();
    v[i] = r * Math.cos(a);
    if (i + 1 < dims) v[i + 1] = r * Math.sin(a);
  }
  return normalize(v);
}

/** A unit vector along axis `i` tilted by `cos` towards axis i+1: similarity to axis i is `cos`. */
function near(i: number, cos = 1, dims = 16): Float32Array {
  const v = new Float32Array(dims);
  v[i] = cos;
  v[(i + 1) % dims] = Math.sqrt(1 - cos * cos);
  return normalize(v);
}

async function until<T>(check: () => Promise<T>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SemanticCacheStore (real Redis)', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  let redis: IORedis;
  let other: IORedis;

  beforeAll(() => {
    redis = new IORedis(REDIS_URL);
    other = new IORedis(REDIS_URL);
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    other.disconnect();
  });

  it('an entry one process inserts is found by another, with its answer, observations and the exact similarity', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 60_000, maxEntries: 100 });
    const b = new SemanticCacheStore(other, prefix, { ttlMs: 60_000, maxEntries: 100 });
    expect(await b.nearest('s1', near(0))).toBeNull();
    const id = await a.insert('s1', near(0), JSON.stringify({ text: 'Paris' }));
    await a.insert('s1', near(5), JSON.stringify({ text: 'Rome' }));
    const found = await b.nearest('s1', near(0, 0.9));
    expect(found).toMatchObject({ id, observations: [] });
    expect(found!.similarity).toBeCloseTo(0.9, 5);
    expect(await b.answer('s1', id, true)).toBe(JSON.stringify({ text: 'Paris' }));
    expect(await b.observe('s1', id, { similarity: 0.9, correct: true })).toBe(true);
    expect(await a.observe('s1', id, { similarity: 0.8, correct: false })).toBe(true);
    expect((await a.nearest('s1', near(0)))!.observations).toEqual([
      { similarity: 0.9, correct: true },
      { similarity: 0.8, correct: false },
    ]);
    // Scopes do not see each other's entries.
    expect(await a.nearest('s2', near(0))).toBeNull();
  });

  it('evicts the least recently used past maxEntries, in every process', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 60_000, maxEntries: 3 });
    const b = new SemanticCacheStore(other, prefix, { ttlMs: 60_000, maxEntries: 3 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await a.insert('lru', near(i), JSON.stringify({ text: `a${i}` })));
    expect((await b.nearest('lru', near(0)))!.id).toBe(ids[0]);
    await b.answer('lru', ids[0], true); // a hit: entry 0 is now the most recently used
    ids.push(await a.insert('lru', near(3), JSON.stringify({ text: 'a3' })));
    // Entry 1 was the least recently used: gone; entry 0 stays.
    expect((await b.nearest('lru', near(1)))?.id).not.toBe(ids[1]);
    expect((await b.nearest('lru', near(0)))!.id).toBe(ids[0]);
    expect(await b.answer('lru', ids[1], false)).toBeNull();
    expect(await b.observe('lru', ids[1], { similarity: 1, correct: true })).toBe(false);
    expect(await redis.hlen(`${prefix}:sc:{sc:lru}:vec`)).toBe(3);
  });

  it('a vector a live entry already holds makes no second entry; once that entry is evicted, it does', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 60_000, maxEntries: 2 });
    const first = await a.insert('dup', near(0), JSON.stringify({ text: 'A' }));
    expect(await a.insert('dup', near(0), JSON.stringify({ text: 'B' }))).toBe(first);
    expect(await redis.hlen(`${prefix}:sc:{sc:dup}:vec`)).toBe(1);
    expect(await a.answer('dup', first, false)).toBe(JSON.stringify({ text: 'A' }));
    // Two other entries push the first out (least recently used); its vector is free again.
    await a.insert('dup', near(3), JSON.stringify({ text: 'C' }));
    await a.insert('dup', near(6), JSON.stringify({ text: 'D' }));
    expect(await a.answer('dup', first, false)).toBeNull();
    const again = await a.insert('dup', near(0), JSON.stringify({ text: 'B' }));
    expect(again).not.toBe(first);
    expect(await a.answer('dup', again, false)).toBe(JSON.stringify({ text: 'B' }));
    expect(await redis.hlen(`${prefix}:sc:{sc:dup}:vh`)).toBe(2);
  });

  it('entries older than the TTL are not served', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 300, maxEntries: 10 });
    const id = await a.insert('ttl', near(2), JSON.stringify({ text: 'soon gone' }));
    expect((await a.nearest('ttl', near(2)))!.id).toBe(id);
    await until(async () => (await a.nearest('ttl', near(2))) === null, 'the entry to expire');
  });

  it('pools observations scope-wide into a threshold curve once there are enough, overlapping ones', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 60_000, maxEntries: 100 });
    const id = await a.insert('pool', near(0), JSON.stringify({ text: 'x' }));
    for (let i = 0; i < 40; i++) await a.observe('pool', id, { similarity: 0.8 + (i % 20) / 100, correct: i % 20 >= 8 || i === 3 });
    const found = await a.nearest('pool', near(0));
    expect(found!.scope).toBeDefined();
    // The curve is on the pooled scale, -ln(1 - s): back on the similarity scale, its threshold lies in the mixed range.
    const t = 1 - Math.exp(-found!.scope!.t);
    expect(t).toBeGreaterThan(0.8);
    expect(t).toBeLessThan(0.95);
  });

  it('reads entries stored as plain float32 by earlier releases, with their exact similarity', async () => {
    const a = new SemanticCacheStore(redis, prefix, { ttlMs: 60_000, maxEntries: 10 });
    const id = await a.insert('legacy', near(4), JSON.stringify({ text: 'new format' }));
    // Overwrite the stored vector with the float32 layout, as an earlier release wrote it.
    const v = near(0, 0.8);
    await redis.hset(`${prefix}:sc:{sc:legacy}:vec`, String(id), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    const found = await new SemanticCacheStore(other, prefix, { ttlMs: 60_000, maxEntries: 10 }).nearest('legacy', near(0));
    expect(found!.id).toBe(id);
    expect(found!.similarity).toBeCloseTo(0.8, 6);
  });

  it('stores vectors as float16: half the bytes, cosines within 1e-4 of the exact ones, a vector with its own copy at 1', () => {
    const random = seededRandom(3);
    let worst = 0;
    for (let n = 0; n < 200; n++) {
      const stored = randomUnit(random, 1536);
      // A few large components, as some embedders' vectors have: the precision must not depend on them.
      if (n % 2 === 1) [3, 500, 1200].forEach((i) => (stored[i] = 0.4));
      normalize(stored);
      const query = randomUnit(random, 1536);
      // A query near the stored vector, as a lookup's is (cosine ~0.9), and an unrelated one.
      const nearQuery = normalize(stored.map((x, i) => 0.9 * x + 0.44 * query[i]));
      const blob = encodeVector(stored);
      expect(blob.length).toBe(2 * 1536);
      for (const q of [query, nearQuery]) worst = Math.max(worst, Math.abs(storedDot(q, blob) - dot(q, stored)));
      // A prompt against its own stored vector: above the 1e-4 step (0.9999) its earlier
      // observations were stored at, by far.
      expect(storedDot(stored, blob)).toBeGreaterThan(1 - 1e-6);
      const decoded = decodeVector(blob, 1536)!;
      expect(Math.abs(dot(decoded, nearQuery) - storedDot(nearQuery, blob))).toBeLessThan(1e-6);
    }
    expect(worst).toBeGreaterThan(0); // it is lossy ...
    expect(worst).toBeLessThan(1e-4); // ... by less than this
    // Exactly representable vectors come back exact; other widths are refused.
    expect(storedDot(near(0, 0.9), encodeVector(near(0)))).toBeCloseTo(0.9, 6);
    expect(decodeVector(encodeVector(near(0)), 12)).toBeNull();
    expect(storedDot(near(0, 0.9, 12), encodeVector(near(0)))).toBeNaN();
    expect(Array.from(decodeVector(encodeVector(new Float32Array(4)), 4)!)).toEqual([0, 0, 0, 0]);
  });

  it('converts to float16 by the standard: exact values, rounding to nearest even, subnormals, overflow', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(0.5)).toBe(0x3800);
    expect(toHalf(0)).toBe(0);
    expect(toHalf(65504)).toBe(0x7bff); // the largest finite half
    expect(toHalf(1e6)).toBe(0x7c00); // overflow: infinity
    expect(toHalf(2 ** -24)).toBe(0x0001); // the smallest subnormal
    expect(toHalf(2 ** -14)).toBe(0x0400); // the smallest normal
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // halfway, to even (down)
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, to even (up)
    expect(toHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // over halfway: up
    expect(toHalf(2 ** -26)).toBe(0); // under half the smallest subnormal
  });

  it('packs observations in five characters', () => {
    expect(encodeObservation({ similarity: 0.93456, correct: true })).toBe('93461');
    expect(encodeObservation({ similarity: 1, correct: false })).toBe('99990');
    expect(decodeObservations('93461' + '05000')).toEqual([
      { similarity: 0.9346, correct: true },
      { similarity: 0.05, correct: false },
    ]);
  });
});
