import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@lib/queue';
import { Observation, ThresholdEstimate } from './logistic-fit';
import { scopeBinOf, ScopeCounts, scopeEstimate } from './vcache-policy';
import { INSERT_SCRIPT, OBSERVE_SCRIPT, SYNC_SCRIPT } from './semantic-cache-scripts';
import { dot, normalize, VectorIndex } from './vector-index';

export interface SemanticCacheStoreOptions {
  /** Entries expire this long after insertion (ms). */
  ttlMs: number;
  /** Entries kept per scope; the least recently used go first. */
  maxEntries: number;
  /**
   * A scope's index is checked against Redis at most this often (ms): an entry another worker
   * just inserted may stay unseen this long (a miss that could have been a hit, never a wrong
   * answer: observations and vectors are always read fresh). @defaultValue 0 (every lookup)
   */
  syncIntervalMs?: number;
}

/** The nearest live entry of a scope, with what the decision needs. */
export interface Neighbour {
  id: number;
  /** Exact cosine similarity on the full vectors. */
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
    const results = await this.redis.pipeline().hmgetBuffer(keys.vec, ...ids).hmget(keys.obs, ...ids).zmscore(keys.born, ...ids).hgetall(keys.glob).exec();
    const [vectors, observations, born, glob] = (results ?? []).map(([err, value]) => (err ? [] : value)) as [
      Array<Buffer | null>,
      Array<string | null>,
      Array<string | null>,
      Record<string, string>,
    ];
    const expiredBefore = Date.now() - this.options.ttlMs;
    let best: Neighbour | null = null;
    candidates.forEach((c, i) => {
      const blob = vectors[i];
      if (!blob || born[i] === null || Number(born[i]) <= expiredBefore) return;
      const similarity = dot(query, bufferToVector(blob));
      if (!best || similarity > best.similarity) best = { id: c.id, similarity, observations: decodeObservations(observations[i] ?? '') };
    });
    if (best) (best as Neighbour).scope = scopeEstimate(decodeScopeCounts(glob));
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
    const blob = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
    const args = [blob, answer, Date.now(), this.options.ttlMs, this.options.maxEntries, this.options.maxEntries + 1024, randomBytes(8).toString('hex')];
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
      state = { index: new VectorIndex(dims), epoch: '', applied: 0, syncedAt: 0 };
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
        added.forEach((id, i) => blobs[i] && state.index.add(Number(id), bufferToVector(blobs[i]!)));
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
      for (let i = 0; i + 1 < flat.length; i += 2) state.index.add(Number(flat[i].toString()), bufferToVector(flat[i + 1]));
    } while (cursor !== '0');
  }

  private keys(scope: string): Record<(typeof KEY_NAMES)[number], string> {
    const base = `${this.prefix}:sc:{sc:${scope}}`;
    return Object.fromEntries(KEY_NAMES.map((name) => [name, `${base}:${name}`])) as Record<(typeof KEY_NAMES)[number], string>;
  }
}

/** Vectors are stored as little-endian float32 (every platform Node runs on here). */
export function bufferToVector(blob: Buffer): Float32Array {
  const copy = new Float32Array(blob.length / 4);
  new Uint8Array(copy.buffer).set(blob);
  return copy;
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
