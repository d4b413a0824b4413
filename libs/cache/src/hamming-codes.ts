/**
 * The hot loops of a VectorIndex, in WebAssembly SIMD (`hamming.wat`): its random projection
 * (Projector), and its 128-bit SimHash codes with stage one of its search (HammingCodes): the
 * rows whose codes are nearest the query's in Hamming distance, scanned with SIMD popcounts
 * over codes kept in the module's memory: 100,000 codes in ~0.4 ms where the same scan in
 * JavaScript (16-bit popcount table) took 1.0 to 1.4 ms on the same machine. Where WebAssembly
 * SIMD is not available, JavaScript loops run instead, with the same results.
 */

/** hamming.wat, compiled by wabt 1.0.37 (hamming-codes.spec.ts compiles the source again and compares). */
export const HAMMING_WASM_BASE64 = 'AGFzbQEAAAABEwJgBX9/f39/AGAGf39/f39/AX8DBAMAAQAFAwEAAQcqBAZtZW1vcnkCAAlkaXN0YW5jZXMAAAdjb2xsZWN0AAEHcHJvamVjdAACCqUDA3sCAnsDfyAC/QAEACEFIAMgAWohCAJAA0AgAyAITw0BIAD9AAQAIAX9Uf1i/X39fyEGIAb9GwAgBv0bAWogBv0bAiAG/RsDamohByADIAc6AAAgBCAHQQJ0aiEJIAkgCSgCAEEBajYCACAAQRBqIQAgA0EBaiEDDAALCwtfAQN/AkADQCAGIAFPDQEgACAGai0AACEHIAcgAkkEQCADIAY2AgAgA0EEaiEDBSAHIAJGIAggBUlxBEAgBCAIQQJ0aiAGNgIAIAhBAWohCAsLIAZBAWohBgwACwsgCAvGAQIDfwJ7IAMgAkECdGohBwJAA0AgBSABTw0B/QwAAAAAAAAAAAAAAAAAAAAAIQj9DAAAAAAAAAAAAAAAAAAAAAAhCSADIQYCQANAIAYgB08NASAIIAD9AAQAIAb9AAQA/eYB/eQBIQggCSAA/QAEECAG/QAEEP3mAf3kASEJIABBIGohACAGQSBqIQYMAAsLIAggCf3kASEIIAQgBUECdGogCP0fACAI/R8BkiAI/R8CIAj9HwOSkjgCACAFQQFqIQUMAAsLCw==';

export const CODE_WORDS = 4;
const CODE_BYTES = 4 * CODE_WORDS;
const MAX_DISTANCE = 32 * CODE_WORDS;
const WASM_PAGE = 65_536;
/** HammingCodes' memory: the query's code, the distance histogram, then the codes; after them, scratch. */
const QUERY_AT = 0;
const HIST_AT = 64;
const CODES_AT = 1024;
/** Projector's memory: the vector, the result, then the matrix. */
const VEC_AT = 0;

/** What this file uses of the WebAssembly global (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const WASM = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface HammingWasm {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  distances(codes: number, n: number, query: number, out: number, hist: number): void;
  collect(dist: number, n: number, cutoff: number, less: number, equal: number, maxEqual: number): number;
  project(matrix: number, rows: number, dims: number, vec: number, out: number): void;
}

let compiled: object | null | undefined;

function instantiate(): HammingWasm | undefined {
  if (compiled === undefined) {
    try {
      compiled = WASM ? new WASM.Module(Buffer.from(HAMMING_WASM_BASE64, 'base64')) : null;
    } catch {
      compiled = null; // no WebAssembly SIMD here: the JavaScript loops
    }
  }
  if (!compiled || !WASM) return undefined;
  return new WASM.Instance(compiled).exports as unknown as HammingWasm;
}

/**
 * out = M · v for a fixed rows × dims matrix M, in WebAssembly (f32x4 multiply-adds: 0.04 ms
 * for 128 × 1,536, where the JavaScript loop took 0.65 ms) or, without it, in JavaScript. The
 * WebAssembly sums in float32 and in another order: its results differ from the JavaScript
 * ones by ~1e-6, and one process always uses the same of the two.
 */
export class Projector {
  private readonly wasm?: HammingWasm;
  private readonly padded: number;
  private readonly outAt: number;
  private readonly matrixAt: number;
  private readonly vec?: Float32Array;
  private readonly out?: Float32Array;

  /** `matrix`: rows × dims, row-major. */
  constructor(
    private readonly matrix: Float32Array,
    readonly rows: number,
    readonly dims: number,
    useWasm = true,
  ) {
    this.padded = Math.ceil(dims / 8) * 8;
    this.outAt = (this.padded * 4 + 15) & ~15;
    this.matrixAt = (this.outAt + rows * 4 + 15) & ~15;
    this.wasm = useWasm ? instantiate() : undefined;
    if (!this.wasm) return;
    const needed = this.matrixAt + rows * this.padded * 4;
    const have = this.wasm.memory.buffer.byteLength;
    if (needed > have) this.wasm.memory.grow(Math.ceil((needed - have) / WASM_PAGE));
    const buffer = this.wasm.memory.buffer;
    const m = new Float32Array(buffer, this.matrixAt, rows * this.padded);
    for (let r = 0; r < rows; r++) m.set(matrix.subarray(r * dims, (r + 1) * dims), r * this.padded);
    this.vec = new Float32Array(buffer, VEC_AT, this.padded);
    this.out = new Float32Array(buffer, this.outAt, rows);
  }

  get usesWasm(): boolean {
    return this.wasm !== undefined;
  }

  /** M · vector (a new array of `rows` values). */
  project(vector: Float32Array): Float32Array {
    if (this.wasm) {
      this.vec!.set(vector);
      this.wasm.project(this.matrixAt, this.rows, this.padded, VEC_AT, this.outAt);
      return Float32Array.from(this.out!);
    }
    const out = new Float32Array(this.rows);
    const p = this.matrix;
    const d = this.dims;
    for (let r = 0; r < this.rows; r++) {
      let s = 0;
      const off = r * d;
      for (let i = 0; i < d; i++) s += p[off + i] * vector[i];
      out[r] = s;
    }
    return out;
  }
}

export class HammingCodes {
  private readonly wasm?: HammingWasm;
  private capacity = 0;
  /** The codes, CODE_WORDS int32 a row (a view of the WebAssembly memory when there is one). */
  private codes = new Int32Array(0);

  /** `useWasm`: false forces the JavaScript scan (tests compare the two). */
  constructor(initialCapacity: number, useWasm = true) {
    this.wasm = useWasm ? instantiate() : undefined;
    this.reserve(Math.max(1, initialCapacity));
  }

  get usesWasm(): boolean {
    return this.wasm !== undefined;
  }

  /** Makes room for `rows` codes (doubling), keeping those stored. */
  reserve(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = Math.max(1, this.capacity);
    while (capacity < rows) capacity *= 2;
    if (this.wasm) {
      // Codes, then scratch: a distance byte a row and two lists of row numbers.
      const needed = CODES_AT + capacity * CODE_BYTES + capacity + 8 * capacity + 16;
      const have = this.wasm.memory.buffer.byteLength;
      if (needed > have) this.wasm.memory.grow(Math.ceil((needed - have) / WASM_PAGE));
      this.codes = new Int32Array(this.wasm.memory.buffer, CODES_AT, capacity * CODE_WORDS);
    } else {
      const grown = new Int32Array(capacity * CODE_WORDS);
      grown.set(this.codes);
      this.codes = grown;
    }
    this.capacity = capacity;
  }

  set(row: number, code: Int32Array): void {
    this.reserve(row + 1);
    this.codes.set(code, row * CODE_WORDS);
  }

  /** Copies row `from`'s code over row `to`'s. */
  move(from: number, to: number): void {
    this.codes.copyWithin(to * CODE_WORDS, from * CODE_WORDS, (from + 1) * CODE_WORDS);
  }

  /**
   * The (up to) `size` rows among the first `n` whose codes are nearest `code`; of rows at the
   * same distance on the cut, the earlier ones. In no particular order.
   */
  nearest(code: Int32Array, n: number, size: number): number[] {
    if (n <= 0 || size <= 0) return [];
    return this.wasm ? this.nearestWasm(this.wasm, code, n, size) : this.nearestJs(code, n, size);
  }

  private nearestWasm(wasm: HammingWasm, code: Int32Array, n: number, size: number): number[] {
    const distAt = CODES_AT + this.capacity * CODE_BYTES;
    const lessAt = (distAt + this.capacity + 3) & ~3;
    size = Math.min(size, n);
    const equalAt = lessAt + 4 * size;
    const buffer = wasm.memory.buffer;
    new Int32Array(buffer, QUERY_AT, CODE_WORDS).set(code);
    const hist = new Int32Array(buffer, HIST_AT, MAX_DISTANCE + 1).fill(0);
    wasm.distances(CODES_AT, n, QUERY_AT, distAt, HIST_AT);
    // The cut-off: the smallest distance at which `size` rows are reached.
    let cutoff = 0;
    let under = 0;
    while (cutoff < MAX_DISTANCE && under + hist[cutoff] < size) under += hist[cutoff++];
    const equal = wasm.collect(distAt, n, cutoff, lessAt, equalAt, size - under);
    const rows = new Int32Array(buffer, lessAt, under);
    const ties = new Int32Array(buffer, equalAt, equal);
    return [...rows, ...ties];
  }

  private nearestJs(code: Int32Array, n: number, size: number): number[] {
    const codes = this.codes;
    const top = new Int32Array(size).fill(-1);
    const dist = new Int32Array(size).fill(MAX_DISTANCE + 1);
    const [q0, q1, q2, q3] = code;
    const bits = POPCOUNT16;
    let worst = MAX_DISTANCE + 1;
    for (let row = 0, off = 0; row < n; row++, off += CODE_WORDS) {
      // Hamming distance by 16-bit table lookups: 2.5 times the speed of SWAR popcounts here.
      const a = codes[off] ^ q0;
      const b = codes[off + 1] ^ q1;
      const c = codes[off + 2] ^ q2;
      const e = codes[off + 3] ^ q3;
      const d =
        bits[a & 0xffff] + bits[a >>> 16] + bits[b & 0xffff] + bits[b >>> 16] + bits[c & 0xffff] + bits[c >>> 16] + bits[e & 0xffff] + bits[e >>> 16];
      if (d >= worst) continue;
      let j = size - 1;
      while (j > 0 && dist[j - 1] > d) {
        dist[j] = dist[j - 1];
        top[j] = top[j - 1];
        j--;
      }
      dist[j] = d;
      top[j] = row;
      worst = dist[size - 1];
    }
    const rows: number[] = [];
    for (let j = 0; j < size && top[j] >= 0; j++) rows.push(top[j]);
    return rows;
  }
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Set bits of every 16-bit value (64 KiB, built once). */
const POPCOUNT16 = Uint8Array.from({ length: 1 << 16 }, (_, i) => popcount(i));
