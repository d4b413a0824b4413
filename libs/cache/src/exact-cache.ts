import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from '@lib/queue';

type RedisLike = Redis | Cluster;

export interface ExactCacheOptions {
  /** How long an embedding stays (s); 0 turns the cache off. */
  ttlSeconds: number;
  /** Entries kept per (provider, model); past it the oldest are evicted. */
  maxEntries: number;
}

/** What an embedding depends on besides its text. */
export interface EmbeddingScope {
  provider: string;
  model: string;
  parameters: Record<string, unknown>;
}

/** MGET and write batches stay this small so that one command never blocks Redis for long. */
const BATCH = 1_000;

/**
 * KEYS[1] the scope's index (sorted set: entry hash -> expiry ms), KEYS[2..] the entries.
 * ARGV: ttlMs, maxEntries, the entry key prefix, then one float32 value per entry.
 * Writes the entries, forgets expired ones, and evicts the oldest past maxEntries. Evicted
 * keys are rebuilt from the prefix: they carry the same hash tag, so the script stays in one
 * Cluster slot.
 */
const PUT = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idx, ttl, max, base = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
-- Scores are expiry times, kept strictly increasing so that "oldest" is the order of writes.
local score = now + ttl
local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= score then score = tonumber(top[2]) + 0.001 end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ttl)
  redis.call('ZADD', idx, score, string.sub(KEYS[i], #base + 1))
  score = score + 0.001
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
local excess = redis.call('ZCARD', idx) - max
while excess > 0 do
  local n = math.min(excess, 1000)
  local old = redis.call('ZRANGE', idx, 0, n - 1)
  redis.call('ZREMRANGEBYRANK', idx, 0, n - 1)
  for k = 1, #old do old[k] = base .. old[k] end
  redis.call('DEL', unpack(old))
  excess = excess - n
end
redis.call('PEXPIRE', idx, ttl)
return 0
`);

/**
 * Exact embedding cache: float32 vectors keyed by (provider, model, parameters, text) in
 * Redis, `<prefix>:emb:{<provider>:<model>}:<sha256>`. The hash tag keeps one model's entries
 * in one Cluster slot, so MGET and the eviction script are cluster-safe. Memory is bounded by
 * the TTL and by `maxEntries` per model (an index of expiry times; the oldest go first): per
 * model at most maxEntries x (dimensions x 4 bytes + key and allocator overhead, ~1.2 KB for a
 * 1,536-d entry) + ~170 bytes of index per entry.
 */
export class ExactCache {
  constructor(
    private readonly redis: RedisLike,
    private readonly prefix: string,
    private readonly options: ExactCacheOptions,
  ) {}

  get enabled(): boolean {
    return this.options.ttlSeconds > 0 && this.options.maxEntries > 0;
  }

  /** The float32 bytes cached for each text, undefined where there is none. */
  async get(scope: EmbeddingScope, texts: string[]): Promise<Array<Buffer | undefined>> {
    if (!this.enabled || texts.length === 0) return texts.map(() => undefined);
    const base = this.base(scope);
    const fingerprint = parametersFingerprint(scope.parameters);
    const out: Array<Buffer | undefined> = [];
    for (let i = 0; i < texts.length; i += BATCH) {
      const keys = texts.slice(i, i + BATCH).map((t) => base + entryHash(fingerprint, t));
      const values = await this.redis.mgetBuffer(...keys);
      for (const v of values) out.push(v && v.length > 0 ? v : undefined);
    }
    return out;
  }

  /** Stores vectors (float32 bytes) for texts; duplicates in `entries` are written once. */
  async put(scope: EmbeddingScope, entries: Array<{ text: string; vector: Buffer }>): Promise<void> {
    if (!this.enabled || entries.length === 0) return;
    const base = this.base(scope);
    const fingerprint = parametersFingerprint(scope.parameters);
    const unique = new Map<string, Buffer>();
    for (const e of entries) unique.set(base + entryHash(fingerprint, e.text), e.vector);
    const all = [...unique.entries()];
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH);
      const keys = [`${base}index`, ...batch.map(([k]) => k)];
      await PUT.run(this.redis, keys, [this.options.ttlSeconds * 1000, this.options.maxEntries, base, ...batch.map(([, v]) => v)]);
    }
  }

  private base(scope: EmbeddingScope): string {
    return `${this.prefix}:emb:{${scope.provider}:${scope.model}}:`;
  }
}

/** Parameters in a canonical order, so that `{a,b}` and `{b,a}` share entries. */
function parametersFingerprint(parameters: Record<string, unknown>): string {
  return JSON.stringify(parameters, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

function entryHash(fingerprint: string, text: string): string {
  return createHash('sha256').update(fingerprint).update('\u0000').update(text).digest('hex');
}
