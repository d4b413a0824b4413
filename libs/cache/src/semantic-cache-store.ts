import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@lib/queue';
import { Observation, ThresholdEstimate } from './logistic-fit';
import { scopeBinOf, ScopeCounts, scopeEstimate } from './vcache-policy';
import { INSERT_SCRIPT, OBSERVE_SCRIPT, SYNC_SCRIPT } from './semantic-cache-scripts';
import { normalize, VectorIndex } from './vector-index';

export interface SemanticCacheStoreOptions {
  /** Entries expire this long after insertion (ms). */
  ttlMs: number;
  /** Entries kept per scope; the least recently used go first. */
  maxEntries: number;
  /**
   * A scope's index is checked against Redis at most this often (ms): an entry another worker
   * just inserted may stay unseen this long (a miss that could have been a hit, never a wrong
   * answer: an entry's observations and vectors are always read fresh). The scope's pooled
   * observation counts are re-read as often. @defaultValue 0 (every lookup)
   */
  syncIntervalMs?: number;
}

/** The nearest live entry of a scope, with what the decision needs. */
export interface Neighbour {
  id: number;
  /** Cosine similarity on the full stored vector (float16: within ~1e-4 of the exact one, see encodeVector). */
  similarity: number;
  observations: Observation[];
  /** The scope's pooled threshold curve, if it has one (see explorationProbabilityFor). */
  scope?: ThresholdEstimate;
}

/** Observations kept per entry (the latest). */
export const MAX_OBSERVATIONS = 200;
/** Candidates of the in-memory search re-ranked on their full vectors from Redis. */
const RERANK = 8;
/** Log events read per sync round trip. */
const SYNC_BATCH = 2000;
/** A scope seen for the first time is replayed from its log on the request path up to this many events. */
const REPLAY_MAX = 4 * SYNC_BATCH;
/** Scope indexes held in memory per process; the least recently used is dropped (and reloaded when needed). */
const MAX_SCOPES = 64;

const KEY_NAMES = ['seq', 'vec', 'ans', 'obs', 'lru', 'born', 'log', 'meta', 'glob', 'vh'] as const;

interface ScopeState {
  index: VectorIndex;
  epoch: string;
  applied: number;
  /** When the index was last brought up to date (ms). */
  syncedAt: number;
  /** The scope's pooled curve as last read, and when (ms); re-read at most every syncIntervalMs. */
  pooled?: ThresholdEstimate;
  pooledAt: number;
  /** A full reload (a new scope for this process, or the log moved past it) runs off the request path. */
  loading?: Promise<void>;
  syncing?: Promise<void>;
}

/**
 * The semantic cache's entries in Redis, shared by every worker, and this process's in-memory
 * index of each scope, kept current by replaying the scope's event log (one round trip per
 * lookup when nothing changed). All of a scope's keys share the hash tag `{sc:<scope>}`.
 */
export class SemanticCacheStore {
  private readonly scopes = new Map<string, ScopeState>();
  private readonly keyCache = new Map<string, Record<(typeof KEY_NAMES)[number], string>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly options: SemanticCacheStoreOptions,
  ) {}

  /**
   * The nearest live entry to the unit vector `query`, or null. `undefined` when this process
   * is still loading the scope (the caller treats that as a plain miss).
   */
  async nearest(scope: string, query: Float32Array): Promise<Neighbour | null | undefined> {
    const state = await this.scopeState(scope, query.length);
    if (!state) return undefined;
    const candidates = state.index.search(query, RERANK);
    if (candidates.length === 0) return null;
    const keys = this.keys(scope);
    const ids = candidates.map((c) => String(c.id));
    // The pooled counts change with every observation of the scope but move its curve slowly:
    // read them at most every syncIntervalMs (entries' own observations are always read fresh).
    const now = Date.now();
    const readPooled = now - state.pooledAt >= (this.options.syncIntervalMs ?? 0);
    const pipeline = this.redis.pipeline().hmgetBuffer(keys.vec, ...ids).hmget(keys.obs, ...ids).zmscore(keys.born, ...ids);
    if (readPooled) pipeline.hgetall(keys.glob);
    const results = await pipeline.exec();
    const [vectors, observations, born, glob] = (results ?? []).map(([err, value]) => (err ? [] : value)) as [
      Array<Buffer | null>,
      Array<string | null>,
      Array<string | null>,
      Record<string, string> | undefined,
    ];
    if (readPooled && glob) {
      state.pooled = scopeEstimate(decodeScopeCounts(glob));
      state.pooledAt = now;
    }
    const expiredBefore = now - this.options.ttlMs;
    let best: Neighbour | null = null;
    candidates.forEach((c, i) => {
      const blob = vectors[i];
      if (!blob || born[i] === null || Number(born[i]) <= expiredBefore) return;
      const similarity = storedDot(query, blob);
      if (Number.isNaN(similarity)) return;
      if (!best || similarity > best.similarity) best = { id: c.id, similarity, observations: decodeObservations(observations[i] ?? '') };
    });
    if (best) (best as Neighbour).scope = state.pooled;
    return best;
  }

  /** The stored answer of an entry, or null when it is gone. `use`: a hit, which makes it recently used. */
  async answer(scope: string, id: number, use: boolean): Promise<string | null> {
    const keys = this.keys(scope);
    if (!use) return this.redis.hget(keys.ans, String(id));
    const results = await this.redis.pipeline().hget(keys.ans, String(id)).zadd(keys.lru, 'XX', Date.now(), String(id)).exec();
    const [err, value] = results?.[0] ?? [null, null];
    return err ? null : (value as string | null);
  }

  async insert(scope: string, vector: Float32Array, answer: string): Promise<number> {
    const k = this.keys(scope);
    const args = [encodeVector(vector), answer, Date.now(), this.options.ttlMs, this.options.maxEntries, this.options.maxEntries + 1024, randomBytes(8).toString('hex')];
    return Number(await INSERT_SCRIPT.run(this.redis, [k.seq, k.vec, k.ans, k.obs, k.lru, k.born, k.log, k.meta, k.glob, k.vh], args));
  }

  /** Adds an observation to an entry; false when the entry is gone. */
  async observe(scope: string, id: number, observation: Observation): Promise<boolean> {
    const k = this.keys(scope);
    const field = `${scopeBinOf(observation.similarity)}:${observation.correct ? 1 : 0}`;
    return Number(await OBSERVE_SCRIPT.run(this.redis, [k.ans, k.obs, k.glob], [String(id), encodeObservation(observation), MAX_OBSERVATIONS, field])) === 1;
  }

  /** The scope's index, brought up to date; undefined while a full load runs (or for another width). */
  private async scopeState(scope: string, dims: number): Promise<ScopeState | undefined> {
    let state = this.scopes.get(scope);
    if (state) {
      this.scopes.delete(scope);
      this.scopes.set(scope, state);
    } else {
      state = { index: new VectorIndex(dims), epoch: '', applied: 0, syncedAt: 0, pooledAt: 0 };
      this.scopes.set(scope, state);
      if (this.scopes.size > MAX_SCOPES) this.scopes.delete(this.scopes.keys().next().value!);
    }
    if (state.index.dims !== dims || state.loading) return undefined;
    if (Date.now() - state.syncedAt >= (this.options.syncIntervalMs ?? 0)) {
      const started = Date.now();
      state.syncing ??= this.sync(scope, state).then(() => void (state.syncedAt = started)).finally(() => (state.syncing = undefined));
      await state.syncing;
    }
    return state.loading ? undefined : state;
  }

  private async sync(scope: string, state: ScopeState): Promise<void> {
    const k = this.keys(scope);
    for (;;) {
      const reply = (await SYNC_SCRIPT.run(this.redis, [k.meta, k.log], [state.epoch, state.applied, SYNC_BATCH])) as Array<string | number>;
      const [epoch, end, mode] = [String(reply[0]), Number(reply[1]), String(reply[2])];
      if (mode === 'reset') {
        state.index.clear();
        state.epoch = epoch;
        // A short log that still starts at its beginning is replayed now; else a full load runs in the background.
        if (Number(reply[3]) === 0 && end <= REPLAY_MAX) {
          state.applied = 0;
          continue;
        }
        state.applied = end;
        state.loading = this.reload(scope, state).finally(() => (state.loading = undefined));
        return;
      }
      const events = reply.slice(3).map(String);
      const added: string[] = [];
      for (const event of events) {
        const id = event.slice(1);
        if (event[0] === '+') added.push(id);
        else {
          state.index.remove(Number(id));
          const at = added.indexOf(id);
          if (at >= 0) added.splice(at, 1);
        }
      }
      if (added.length > 0) {
        const blobs = await this.redis.hmgetBuffer(k.vec, ...added);
        added.forEach((id, i) => blobs[i] && addStored(state.index, Number(id), blobs[i]!));
      }
      state.applied = end;
      if (events.length < SYNC_BATCH) return;
    }
  }

  /** Loads every vector of the scope; the log position was taken first, so later events replay over it. */
  private async reload(scope: string, state: ScopeState): Promise<void> {
    const k = this.keys(scope);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscanBuffer(k.vec, cursor, 'COUNT', 500);
      cursor = next.toString();
      for (let i = 0; i + 1 < flat.length; i += 2) addStored(state.index, Number(flat[i].toString()), flat[i + 1]);
    } while (cursor !== '0');
  }

  private keys(scope: string): Record<(typeof KEY_NAMES)[number], string> {
    let keys = this.keyCache.get(scope);
    if (!keys) {
      const base = `${this.prefix}:sc:{sc:${scope}}`;
      keys = Object.fromEntries(KEY_NAMES.map((name) => [name, `${base}:${name}`])) as Record<(typeof KEY_NAMES)[number], string>;
      if (this.keyCache.size >= 4 * MAX_SCOPES) this.keyCache.clear();
      this.keyCache.set(scope, keys);
    }
    return keys;
  }
}

/**
 * Stored vectors are IEEE half precision (float16, little-endian): half of float32's bytes.
 * Every lookup reads its candidates' vectors from Redis, and those bytes (48 KB for 8 candidates
 * of 1,536 float32 dimensions) were what set off the garbage collector's full collections in a
 * busy worker, the tail of the decision time. Half precision keeps 11 significant bits: a
 * component moves by at most 2^-11 of itself, a cosine with a unit query by ~1e-5, and a
 * prompt's cosine with its own stored vector stays within 1e-7 of 1 (storedDot divides by the
 * rounded length), whatever the scale of the components. (int8 with a scale, a quarter of the
 * bytes, was tried: a prompt's cosine with its own stored copy fell to 0.99996, under the 1e-4
 * step its earlier observations are stored at, so a repeated prompt never counted as seen; and
 * it gets worse with embedders whose vectors have a few large components.) Entries written as
 * float32 (4 bytes a dimension, by earlier releases) are still read.
 */
export function encodeVector(vector: Float32Array): Buffer {
  const blob = Buffer.allocUnsafe(2 * vector.length);
  for (let i = 0; i < vector.length; i++) blob.writeUInt16LE(toHalf(vector[i]), 2 * i);
  return blob;
}

/** A stored vector of `dims` dimensions (float16 or legacy float32), unit length, or null when the blob has another width. */
export function decodeVector(blob: Buffer, dims: number): Float32Array | null {
  const out = new Float32Array(dims);
  if (blob.length === 2 * dims) {
    for (let i = 0; i < dims; i++) out[i] = HALF_TO_FLOAT[blob[2 * i] | (blob[2 * i + 1] << 8)];
    return normalize(out);
  }
  if (blob.length === 4 * dims) {
    new Uint8Array(out.buffer).set(blob);
    return out;
  }
  return null;
}

/**
 * The cosine of the unit `query` with a stored vector, read straight from the blob (no copy);
 * NaN when the widths differ. A float16 vector is divided by its own (rounded) length, so that
 * the cosine of a prompt with its own stored vector misses 1 by the square of the rounding
 * error, not by the error itself.
 */
export function storedDot(query: Float32Array, blob: Buffer): number {
  const dims = query.length;
  let sum = 0;
  if (blob.length === 2 * dims) {
    let norm = 0;
    for (let i = 0; i < dims; i++) {
      const v = HALF_TO_FLOAT[blob[2 * i] | (blob[2 * i + 1] << 8)];
      sum += query[i] * v;
      norm += v * v;
    }
    return norm > 0 ? sum / Math.sqrt(norm) : 0;
  }
  if (blob.length === 4 * dims) {
    for (let i = 0; i < dims; i++) sum += query[i] * blob.readFloatLE(4 * i);
    return sum;
  }
  return NaN;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 -> float16 bits, rounded to nearest even (subnormals kept, overflow to infinity). */
export function toHalf(x: number): number {
  F32[0] = x;
  const bits = U32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  let mant = bits & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00 | (((bits >>> 23) & 0xff) === 0xff && mant ? 0x200 : 0);
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent: the right result, up to infinity.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return half;
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Every float16 bit pattern's value (256 KiB, built once). */
const HALF_TO_FLOAT = Float32Array.from({ length: 1 << 16 }, (_, h) => fromHalf(h));

function addStored(index: VectorIndex, id: number, blob: Buffer): void {
  const vector = decodeVector(blob, index.dims);
  if (vector) index.add(id, vector);
}

export function vectorOf(values: readonly number[]): Float32Array {
  return normalize(Float32Array.from(values));
}

/** Five characters: the similarity in 1e-4 steps (0000-9999, clamped), then 1 (right) or 0. */
export function encodeObservation(o: Observation): string {
  const q = Math.min(9999, Math.max(0, Math.round(o.similarity * 10_000)));
  return String(q).padStart(4, '0') + (o.correct ? '1' : '0');
}

export function decodeObservations(packed: string): Observation[] {
  const out: Observation[] = [];
  for (let i = 0; i + 5 <= packed.length; i += 5) out.push({ similarity: Number(packed.slice(i, i + 4)) / 10_000, correct: packed[i + 4] === '1' });
  return out;
}

/** The `glob` hash ("<bin>:<1|0>" -> count) as ScopeCounts. */
export function decodeScopeCounts(glob: Record<string, string> | undefined): ScopeCounts {
  const counts: ScopeCounts = new Map();
  for (const [field, value] of Object.entries(glob ?? {})) {
    const [bin, right] = field.split(':').map(Number);
    const c = counts.get(bin) ?? { right: 0, wrong: 0 };
    if (right === 1) c.right += Number(value);
    else c.wrong += Number(value);
    counts.set(bin, c);
  }
  return counts;
}
