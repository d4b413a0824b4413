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
const RESERVE_BODY = `
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

/** RESERVE as a Lua function, `reserve(KEYS, ARGV)`, for scripts that admit on the way. */
const RESERVE_FN = `local function reserve(KEYS, ARGV)${RESERVE_BODY}end
`;

export const RESERVE_LUA = `${RESERVE_FN}return reserve(KEYS, ARGV)
`;

/**
 * Admission of a job in the round trip that fetched it: written by a worker on its blocking
 * connection right behind BZPOPMIN and moveToActive (StartFirstWorker), so that Redis runs it
 * the moment the job is handed out. It finds the job the fetch just locked (the head of the
 * active list, locked with the fetch's token), reads the limiter subject the API put first in
 * the job's data (`{"admit":[model, tokens, 1 when default_max_tokens applies, 1 for a text
 * embedding], ...}`: read without parsing the rest of the data; a text embedding only when the
 * worker says so, i.e. when no exact cache or coalescing may change what it is charged), builds
 * the keys and arguments ProviderLimiter.acquire would (the same scopes, model caps matched the
 * same way: an exact name, else the longest `*` prefix) and runs RESERVE with them.
 *
 * Not on a Redis Cluster: it reads the job's keys and the limiter's, which live in different
 * slots.
 *
 * KEYS: the queue's active list.
 * ARGV: job key prefix, the fetch's token, the limiter's key prefix for the queue
 *       (\`<prefix>:rl:{<queue>}:\`), leaseTtlMs, concRetryMs, windowMs, defaultMaxTokens,
 *       admitEmbeddings (1: text embeddings too), hasProvider (1 when the queue has limits),
 *       m, the provider's scope (7 numbers), then m x (model name or \`prefix*\`, 7 numbers).
 *       A scope's numbers: rpm emission, tolerance, cap, tpm emission, tolerance, cap,
 *       concurrency; a cap of 0 is not enforced.
 * Returns false when the fetch handed out no job; {jobId} when the job has no subject (it is
 * admitted at the rate gate as usual); else {jobId, waitMs, state, model, tokens}, with
 * RESERVE's waitMs and state for the job (lease named after the job id, not prepaid).
 */
export const FETCH_ADMIT_LUA = `${RESERVE_FN}
local jobId = redis.call('LINDEX', KEYS[1], 0)
if not jobId then return false end
local jobKey = ARGV[1] .. jobId
if redis.call('GET', jobKey .. ':lock') ~= ARGV[2] then return false end
local data = redis.call('HGET', jobKey, 'data')
if not data or string.sub(data, 1, 10) ~= '{"admit":[' then return {jobId} end
local close = string.find(data, ']', 11, true)
if not close then return {jobId} end
local ok, admit = pcall(cjson.decode, string.sub(data, 10, close))
if not ok or type(admit) ~= 'table' or type(admit[1]) ~= 'string' or type(admit[2]) ~= 'number' then return {jobId} end
if admit[4] == 1 and ARGV[8] ~= '1' then return {jobId} end
local model, tokens = admit[1], admit[2]
if admit[3] == 1 then tokens = tokens + tonumber(ARGV[7]) end

local prefix = ARGV[3]
local tats, logs, sums, quads, leases, limits = {}, {}, {}, {}, {}, {}
local function scope(o, name)
  local function budget(kind, e, tol, cost, cap)
    local base = prefix .. name .. kind .. ':'
    tats[#tats + 1], logs[#logs + 1], sums[#sums + 1] = base .. 'tat', base .. 'log', base .. 'sum'
    for _, v in ipairs({e, tol, cost, cap}) do quads[#quads + 1] = v end
  end
  if tonumber(ARGV[o + 2]) > 0 then budget('rpm', ARGV[o], ARGV[o + 1], 1, ARGV[o + 2]) end
  if tonumber(ARGV[o + 5]) > 0 and tokens > 0 then budget('tpm', ARGV[o + 3], ARGV[o + 4], tokens, ARGV[o + 5]) end
  if tonumber(ARGV[o + 6]) > 0 then
    leases[#leases + 1] = prefix .. name .. 'conc'
    limits[#limits + 1] = ARGV[o + 6]
  end
end
if ARGV[9] == '1' then
  scope(11, '')
  local best, bestLen = nil, -1
  for i = 0, tonumber(ARGV[10]) - 1 do
    local o = 18 + i * 8
    local name = ARGV[o]
    if name == model then
      best = o
      break
    end
    if string.sub(name, -1) == '*' then
      local head = string.sub(name, 1, -2)
      if #head > bestLen and string.sub(model, 1, #head) == head then best, bestLen = o, #head end
    end
  end
  if best then scope(best + 1, 'm:' .. model .. ':') end
end

local keys = {}
for _, list in ipairs({tats, logs, sums, {prefix .. 'pause', prefix .. 'm:' .. model .. ':pause'}, leases}) do
  for _, key in ipairs(list) do keys[#keys + 1] = key end
end
local args = {'0', #tats, 2, #leases, jobId, ARGV[4], ARGV[5], ARGV[6]}
for _, list in ipairs({quads, limits}) do
  for _, v in ipairs(list) do args[#args + 1] = v end
end
local answer = reserve(keys, args)
return {jobId, answer[1], answer[2], model, tokens}
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
