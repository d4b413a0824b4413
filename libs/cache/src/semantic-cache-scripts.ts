import { LuaScript } from '@lib/queue';

/**
 * Lua for the semantic cache's per-scope keys. Every key of one scope shares a hash tag, so
 * each script runs on one node of a cluster and is atomic with respect to other workers.
 *
 * Keys of a scope: seq (entry id counter), vec (id -> float32 vector), ans (id -> answer JSON),
 * obs (id -> observations, 5 characters each), lru (id -> last use, ms), born (id -> insertion,
 * ms), log (list of "+id"/"-id" events that workers replay into their in-memory index), meta
 * (hash: epoch, the log's creation id; base, how many events were trimmed off the log's head),
 * glob (scope-wide observation counts: field "<similarity bin>:<1 right | 0 wrong>"), vh (SHA-1 of
 * a vector -> the live entry holding exactly that vector).
 */

/**
 * Inserts an entry, then evicts what expired (born before now - ttl) and what exceeds the
 * capacity (least recently used first), trims the log, and extends the keys' lifetime: a scope
 * nobody writes to for a TTL holds only expired entries, and vanishes whole. A vector some live
 * entry already holds exactly (the same prompt, explored by several requests at once, or
 * answered differently) makes no second entry: a twin is never nearer to any prompt than the
 * entry already there, and would only split its observations.
 * KEYS: seq vec ans obs lru born log meta glob vh. ARGV: vector, answer, now, ttlMs, maxEntries, logKeep, epoch.
 * Returns the new entry's id, or the id of the entry that holds the vector.
 */
export const INSERT_SCRIPT = new LuaScript(`
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local hash = redis.sha1hex(ARGV[1])
local same = redis.call('HGET', KEYS[10], hash)
if same then
  local born = redis.call('ZSCORE', KEYS[6], same)
  if born and tonumber(born) > now - ttl then return tonumber(same) end
end
redis.call('HSETNX', KEYS[8], 'epoch', ARGV[7])
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('HSET', KEYS[10], hash, id)
redis.call('HSET', KEYS[3], id, ARGV[2])
redis.call('ZADD', KEYS[5], now, id)
redis.call('ZADD', KEYS[6], now, id)
redis.call('RPUSH', KEYS[7], '+' .. id)
local function evict(v)
  local blob = redis.call('HGET', KEYS[2], v)
  if blob then
    local h = redis.sha1hex(blob)
    if redis.call('HGET', KEYS[10], h) == v then redis.call('HDEL', KEYS[10], h) end
  end
  redis.call('ZREM', KEYS[5], v)
  redis.call('ZREM', KEYS[6], v)
  redis.call('HDEL', KEYS[2], v)
  redis.call('HDEL', KEYS[3], v)
  redis.call('HDEL', KEYS[4], v)
  redis.call('RPUSH', KEYS[7], '-' .. v)
end
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now - ttl, 'LIMIT', 0, 256)) do evict(v) end
local over = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[5])
if over > 0 then
  for _, v in ipairs(redis.call('ZRANGE', KEYS[5], 0, over - 1)) do evict(v) end
end
local keep = tonumber(ARGV[6])
local len = redis.call('LLEN', KEYS[7])
if len > 2 * keep then
  redis.call('LTRIM', KEYS[7], len - keep, -1)
  redis.call('HINCRBY', KEYS[8], 'base', len - keep)
end
for i = 1, 10 do redis.call('PEXPIRE', KEYS[i], ttl) end
return id
`);

/**
 * Appends one observation to a live entry, keeping the latest `cap`, and counts it scope-wide.
 * KEYS: ans obs glob. ARGV: id, observation (5 characters), cap, scope-wide count field.
 * Returns 1, or 0 if the entry is gone.
 */
export const OBSERVE_SCRIPT = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
local v = (redis.call('HGET', KEYS[2], ARGV[1]) or '') .. ARGV[2]
local cap = tonumber(ARGV[3]) * 5
if #v > cap then v = string.sub(v, #v - cap + 1) end
redis.call('HSET', KEYS[2], ARGV[1], v)
return 1
`);

/**
 * The log's events after `applied` (at most `max`), read atomically with where the log stands.
 * KEYS: meta log. ARGV: epoch the caller knows, applied, max.
 * Returns {epoch, end, 'delta', events...} or {epoch, end, 'reset', base} when the caller must reload
 * (another epoch: the scope expired and was re-created; or its position was trimmed away).
 */
export const SYNC_SCRIPT = new LuaScript(`
local m = redis.call('HMGET', KEYS[1], 'epoch', 'base')
local epoch = m[1] or ''
local base = tonumber(m[2]) or 0
local len = redis.call('LLEN', KEYS[2])
local applied = tonumber(ARGV[2])
if epoch ~= ARGV[1] or applied < base or applied > base + len then return {epoch, base + len, 'reset', base} end
local from = applied - base
if from >= len then return {epoch, applied, 'delta'} end
local events = redis.call('LRANGE', KEYS[2], from, from + tonumber(ARGV[3]) - 1)
local out = {epoch, applied + #events, 'delta'}
for i = 1, #events do out[#out + 1] = events[i] end
return out
`);
