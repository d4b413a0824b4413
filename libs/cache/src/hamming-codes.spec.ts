import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAMMING_WASM_BASE64, HammingCodes } from './hamming-codes';
import { seededRandom } from './vector-index';

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
});
