/**
 * The limiter's Lua, run atomically in Redis so that any number of workers on any number of
 * machines share one budget. Time is Redis's own clock (TIME), so worker clocks may drift.
 * Every key of one call carries the provider's hash tag and lands in one Cluster slot.
 *
 * Two mechanisms per budget (a cap of L per minute):
 * - Scheduling, GCRA "theoretical arrival times" (TAT, in ms): with headroom h, an emission
 *   interval e = 60000 / (L (1 - h)) per unit and a burst tolerance of h L units. A request
 *   costing c units gets the slot max(now, TAT + e c - tolerance) (just TAT when c is larger
 *   than the whole burst: it goes once the bucket is full); a slot in the future is
 *   reserved at once (TAT moves on) and the job sleeps until then, so each waiting job is
 *   scheduled exactly once and nothing spins.
 * - A guard at the moment of sending: a log of what was really sent in the last 60 s + margin
 *   (a sorted set, and the running token sum), which never lets the sum pass L. Slots are
 *   exact, but a job can wake late (a busy worker, a slow promotion) and late jobs bunch up;
 *   the guard holds the provider's own count whatever the lateness.
 */

/**
 * KEYS: n TAT keys, n send logs, n send sums, p pause keys, c concurrency sets.
 * ARGV: mode (0 | 1 prepaid | 2 now only: admitted now or refused, never a slot reserved for
 *       later), n, p, c, leaseId, leaseTtlMs, concRetryMs, windowMs,
 *       n x (emission, tolerance, cost, cap), c x limit.
 * Returns {waitMs, state}: 0 admitted (sent is logged, lease taken); 1 slot reserved (sleep
 * waitMs, come back prepaid); 2 concurrency full, 3 paused, 4 the last minute's sends are at
 * the cap (nothing charged: come back after waitMs, keeping any slot already held).
 */
export const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prepaid = ARGV[1] == '1'
local nowOnly = ARGV[1] == '2'
local n, p, c = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local leaseId, leaseTtl, concRetry, windowMs = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local base = 8
local function budget(i)
  local o = base + (i - 1) * 4
  return tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
end

local start = now
for i = 1, p do
  local untilMs = tonumber(redis.call('GET', KEYS[3 * n + i]) or '0')
  if untilMs > start then start = untilMs end
end
-- Paused: come back when it ends, uncharged, and compete for slots then. A slot bought
-- before the pause is lost (the provider refused that moment); reserving after the pause
-- would hold the provider-wide budget for other models.
if start > now then return {math.ceil(start - now), 3} end

local admit = start
if not prepaid then
  for i = 1, n do
    local e, tol, cost = budget(i)
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    -- The whole cost must fit in the burst; a request bigger than the burst goes once the
    -- bucket is full (it cannot hold more), rather than also waiting for tokens it never could.
    local at = tat - math.max(0, tol - e * cost)
    if at > admit then admit = at end
  end
end

local function charge(at)
  for i = 1, n do
    local e, tol, cost = budget(i)
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < at then tat = at end
    tat = tat + e * cost
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now + tol) + 1000)
  end
end

-- Within a millisecond is now: not worth a trip through the delayed set.
if admit > now + 1 then
  if nowOnly then return {math.ceil(admit - now), 1} end
  charge(admit)
  return {math.ceil(admit - now), 1}
end

for j = 1, c do
  local key, limit = KEYS[3 * n + p + j], tonumber(ARGV[base + n * 4 + j])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, leaseId) and redis.call('ZCARD', key) >= limit then
    return {concRetry, 2}
  end
end

-- The guard: drop sends older than the window, then wait if this one would pass the cap.
for i = 1, n do
  local _, _, cost, cap = budget(i)
  local log, sumKey = KEYS[n + i], KEYS[2 * n + i]
  local sum = tonumber(redis.call('GET', sumKey) or '0')
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - windowMs)
  for _, member in ipairs(old) do sum = sum - tonumber(string.match(member, ':(%d+)$')) end
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - windowMs)
    redis.call('SET', sumKey, sum, 'PX', windowMs + 1000)
  end
  if sum + cost > cap and sum > 0 then
    -- Wait until enough of the oldest sends leave the window.
    local free = sum + cost - cap
    local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    for k = 1, #entries, 2 do
      free = free - tonumber(string.match(entries[k], ':(%d+)$'))
      if free <= 0 then return {math.max(1, math.ceil(tonumber(entries[k + 1]) + windowMs - now)), 4} end
    end
    return {windowMs, 4}
  end
end

if not prepaid then charge(now) end
for i = 1, n do
  local _, _, cost = budget(i)
  local log, sumKey = KEYS[n + i], KEYS[2 * n + i]
  redis.call('ZADD', log, now, leaseId .. ':' .. now .. ':' .. math.ceil(cost))
  redis.call('PEXPIRE', log, windowMs + 1000)
  redis.call('INCRBY', sumKey, math.ceil(cost))
  redis.call('PEXPIRE', sumKey, windowMs + 1000)
end
for j = 1, c do
  local key = KEYS[3 * n + p + j]
  redis.call('ZADD', key, now + leaseTtl, leaseId)
  redis.call('PEXPIRE', key, leaseTtl + 1000)
end
return {0, 0}
`;

/**
 * After the call. KEYS: c concurrency sets, then m x (token TAT key, send log, send sum).
 * ARGV: leaseId, c, m, windowMs, m x (emission, deltaTokens). A positive delta charges tokens the
 * estimate missed (to the schedule and the send log); a negative one gives unused tokens back
 * to the schedule.
 */
export const SETTLE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseId, c, m, windowMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for j = 1, c do redis.call('ZREM', KEYS[j], leaseId) end
for i = 1, m do
  local key, log, sumKey = KEYS[c + (i - 1) * 3 + 1], KEYS[c + (i - 1) * 3 + 2], KEYS[c + (i - 1) * 3 + 3]
  local e, delta = tonumber(ARGV[4 + (i - 1) * 2 + 1]), tonumber(ARGV[4 + (i - 1) * 2 + 2])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > 0 then
    local ttl = redis.call('PTTL', key)
    tat = tat + e * delta
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.max(1000, ttl + math.ceil(e * delta)))
  end
  if delta > 0 then
    local ttl = redis.call('PTTL', log)
    if ttl > 0 then
      redis.call('ZADD', log, now, leaseId .. ':settle:' .. now .. ':' .. math.ceil(delta))
      redis.call('INCRBY', sumKey, math.ceil(delta))
      redis.call('PEXPIRE', log, windowMs + 1000)
      redis.call('PEXPIRE', sumKey, windowMs + 1000)
    end
  end
end
return 1
`;

/** KEYS: pause keys. ARGV: pauseMs. Extends a pause, never shortens one. Returns the pause end. */
export const PAUSE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[1])
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current < untilMs then redis.call('SET', KEYS[i], untilMs, 'PX', tonumber(ARGV[1])) end
end
return tonumber(ARGV[1])
`;

/**
 * One client's request budget (API key). KEYS: TAT key. ARGV: emission, burst (requests).
 * Returns {allowed 0|1, remaining, resetMs (until the budget is full again), retryAfterMs}.
 */
export const CLIENT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local e, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nextTat = tat + e
if nextTat - now > burst * e then
  return {0, 0, math.ceil(tat - now), math.ceil(nextTat - now - burst * e)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
return {1, math.floor((now + burst * e - nextTat) / e), math.ceil(nextTat - now), 0}
`;
