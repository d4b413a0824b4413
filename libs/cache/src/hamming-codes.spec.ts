import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAMMING_WASM_BASE64, HammingCodes, Projector } from './hamming-codes';
import { seededRandom, VectorIndex } from './vector-index';

function randomCode(random: () => number): Int32Array {
  return Int32Array.from({ length: 4 }, () => (random() * 2 ** 32) | 0);
}

/** `code` with `flips` of its 128 bits flipped (distinct bits): Hamming distance `flips` from it. */
function flipped(code: Int32Array, flips: number, random: () => number): Int32Array {
  const out = Int32Array.from(code);
  const bits = new Set<number>();
  while (bits.size < flips) bits.add(Math.floor(random() * 128));
  for (const b of bits) out[b >>> 5] ^= 1 << (b & 31);
  return out;
}

describe('HammingCodes', () => {
  it('runs the WebAssembly SIMD scan on this Node', () => {
    expect(new HammingCodes(8).usesWasm).toBe(true);
    expect(new HammingCodes(8, false).usesWasm).toBe(false);
  });

  it('the embedded module is hamming.wat compiled again', async () => {
    const wabt = await (require('wabt') as () => Promise<{ parseWat(name: string, src: string, features: object): { toBinary(o: object): { buffer: Uint8Array } } }>)();
    const source = readFileSync(join(__dirname, 'hamming.wat'), 'utf8');
    const { buffer } = wabt.parseWat('hamming.wat', source, { simd: true }).toBinary({});
    expect(Buffer.from(buffer).toString('base64')).toBe(HAMMING_WASM_BASE64);
  });

  it('finds the same nearest rows as the JavaScript scan, ties going to earlier rows, through growth and moves', () => {
    const random = seededRandom(42);
    const wasm = new HammingCodes(4);
    const js = new HammingCodes(4, false);
    const query = randomCode(random);
    const n = 5000;
    for (let row = 0; row < n; row++) {
      // Many rows at a few small distances, so that the cut falls among ties.
      const code = row % 7 === 0 ? flipped(query, 10 + (row % 3), random) : randomCode(random);
      wasm.set(row, code);
      js.set(row, code);
    }
    // Row 0 gets the last row's code, as VectorIndex.remove does.
    wasm.move(n - 1, 0);
    js.move(n - 1, 0);
    for (const size of [1, 8, 64, 300, 714, 4999, 5000, 6000]) {
      const a = wasm.nearest(query, n - 1, size).sort((x, y) => x - y);
      const b = js.nearest(query, n - 1, size).sort((x, y) => x - y);
      expect(a).toEqual(b);
      expect(a.length).toBe(Math.min(size, n - 1));
    }
    // The 10-bit neighbours come first: rows 7, 14, ... with row % 3 === 1 give distance 11, etc.
    const nearest = wasm.nearest(query, n - 1, 5);
    expect(nearest.every((row) => row % 7 === 0)).toBe(true);
    expect(wasm.nearest(query, 0, 8)).toEqual([]);
  });

  it('projects as the JavaScript loop does, to float32 precision, for widths that are not a multiple of 8', () => {
    const random = seededRandom(9);
    for (const dims of [5, 128, 1536, 1539]) {
      const matrix = Float32Array.from({ length: 128 * dims }, () => random() - 0.5);
      const wasm = new Projector(matrix, 128, dims);
      const js = new Projector(matrix, 128, dims, false);
      expect(wasm.usesWasm).toBe(true);
      expect(js.usesWasm).toBe(false);
      for (let n = 0; n < 5; n++) {
        const v = Float32Array.from({ length: dims }, () => random() - 0.5);
        const a = wasm.project(v);
        const b = js.project(v);
        expect(a.length).toBe(128);
        const scale = Math.sqrt(dims) * 0.3;
        for (let r = 0; r < 128; r++) expect(Math.abs(a[r] - b[r])).toBeLessThan(1e-5 * scale);
      }
    }
  });

  it('a VectorIndex finds the same nearest entries with the WebAssembly kernels as with JavaScript', () => {
    const random = seededRandom(11);
    const unit = (v: Float32Array) => {
      const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      return v.map((x) => x / n);
    };
    const gaussian = () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
    const vectors = Array.from({ length: 500 }, () => unit(Float32Array.from({ length: 1536 }, gaussian)));
    const wasm = new VectorIndex(1536);
    const js = new VectorIndex(1536, 1024, false);
    vectors.forEach((v, id) => {
      wasm.add(id, v);
      js.add(id, v);
    });
    for (let q = 0; q < 50; q++) {
      const target = vectors[q * 7];
      const query = unit(target.map((x) => 0.9 * x + 0.44 * gaussian() / Math.sqrt(1536)));
      expect(wasm.search(query, 1)[0].id).toBe(q * 7);
      expect(js.search(query, 1)[0].id).toBe(q * 7);
    }
  });
});
