import { dot, normalize, PROJECTED_DIMS, seededRandom, VectorIndex } from './vector-index';

function randomUnit(random: () => number, dims: number): Float32Array {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = random() - 0.5;
  return normalize(v);
}

/** cos·base + sin·(a random direction): similarity to base close to cos in high dimension. */
function tilted(random: () => number, base: Float32Array, cos: number): Float32Array {
  const noise = randomUnit(random, base.length);
  const d = dot(noise, base);
  for (let i = 0; i < base.length; i++) noise[i] -= d * base[i];
  normalize(noise);
  const sin = Math.sqrt(1 - cos * cos);
  return normalize(base.map((x, i) => cos * x + sin * noise[i]));
}

describe('VectorIndex', () => {
  it.each([
    [64, 5000],
    [1536, 1000],
  ])('finds the entry a query was derived from (dims %i, %i entries)', (dims, entries) => {
    const random = seededRandom(42);
    const index = new VectorIndex(dims, 16);
    const vectors = Array.from({ length: entries }, () => randomUnit(random, dims));
    vectors.forEach((v, id) => index.add(id, v));
    expect(index.exact).toBe(dims <= PROJECTED_DIMS);
    for (let t = 0; t < 50; t++) {
      const target = (t * 97) % vectors.length;
      const query = tilted(random, vectors[target], 0.85);
      const [best] = index.search(query, 4);
      expect(best.id).toBe(target);
      // Exact scores when no projection is needed; estimates (re-ranked by the caller) otherwise.
      expect(best.score).toBeCloseTo(dot(vectors[target], query), index.exact ? 5 : 0);
    }
  });

  it('removes entries (the last row moves into the gap) and ignores a second add of an id', () => {
    const random = seededRandom(7);
    const index = new VectorIndex(32, 2);
    const vectors = Array.from({ length: 10 }, () => randomUnit(random, 32));
    vectors.forEach((v, id) => index.add(id, v));
    index.add(3, vectors[9]);
    expect(index.size).toBe(10);
    index.remove(3);
    index.remove(3);
    expect(index.size).toBe(9);
    expect(index.has(3)).toBe(false);
    expect(index.search(vectors[3], 1)[0].id).not.toBe(3);
    expect(index.search(vectors[9], 1)[0]).toEqual({ id: 9, score: expect.closeTo(1, 5) });
    expect(index.search(new Float32Array(16), 1)).toEqual([]);
  });
});
