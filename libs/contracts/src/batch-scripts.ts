import type { BatchResultLine } from './batch';

/**
 * Lua scripts over the keys of one batch (BatchKeys: one hash tag, so they run on a Redis Cluster
 * too). They are shared by the API (upload, cancel) and the workers (line outcomes, feeding), so
 * the counters and the status change in one place, atomically.
 */

/**
 * Ends the batch's line work when every line of a finished upload has an outcome: `settled=1`
 * and the status it will end in; the finalizer (worker) then stamps it and sends the callback.
 */
const SETTLE = `
local function settle(meta, now)
  local h = redis.call('HMGET', meta, 'status', 'uploaded', 'total', 'completed', 'failed', 'settled', 'failing')
  if h[2] ~= '1' or h[6] == '1' then return 0 end
  if (tonumber(h[4]) or 0) + (tonumber(h[5]) or 0) < (tonumber(h[3]) or 0) then return 0 end
  local final = 'COMPLETED'
  if h[7] == '1' then final = 'FAILED' elseif h[1] == 'CANCELING' then final = 'CANCELED' end
  redis.call('HSET', meta, 'settled', '1', 'final_status', final)
  if h[1] == 'IN_PROGRESS' or h[1] == 'VALIDATING' then redis.call('HSET', meta, 'status', 'FINALIZING') end
  return 1
end
`;

/**
 * KEYS: meta, results, queued, pending. ARGV: now, then (index, job id or '', 'completed'|'failed',
 * line JSON) per line. A line is recorded once (a re-run after a crash changes nothing). Returns
 * {lines recorded, lines still in the queue, settled 0|1, lines waiting to be fed}.
 */
export const RECORD_LINES = `${SETTLE}
local added = 0
for i = 2, #ARGV, 4 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 3]) == 1 then
    added = added + 1
    redis.call('HINCRBY', KEYS[1], ARGV[i + 2], 1)
  end
  if ARGV[i + 1] ~= '' then redis.call('SREM', KEYS[3], ARGV[i + 1]) end
end
local settled = 0
if added > 0 then settled = settle(KEYS[1], ARGV[1]) end
return {added, redis.call('SCARD', KEYS[3]), settled, redis.call('LLEN', KEYS[4])}
`;

/**
 * KEYS: meta, pending. ARGV: lines in the chunk (valid or not), then the valid lines (JSON).
 * Counts the chunk; queues its valid lines only while the batch is VALIDATING. Returns 1 when
 * queued, 0 when the batch was canceled or failed meanwhile (the caller records them stopped).
 */
export const UPLOAD_CHUNK = `
redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'VALIDATING' then return 0 end
if #ARGV > 1 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 2)) end
return 1
`;

/** KEYS: meta. ARGV: now. The upload is over: VALIDATING -> IN_PROGRESS. Returns settled 0|1. */
export const UPLOAD_END = `${SETTLE}
if redis.call('HGET', KEYS[1], 'status') == 'VALIDATING' then
  redis.call('HSET', KEYS[1], 'status', 'IN_PROGRESS', 'in_progress_at', ARGV[1])
end
redis.call('HSET', KEYS[1], 'uploaded', '1')
return settle(KEYS[1], ARGV[1])
`;

/**
 * KEYS: meta. ARGV: 'CANCELING' or 'FAILED', now, error JSON (FAILED) or ''. Stops a batch that
 * has not settled: a cancel shows CANCELING, a failure FINALIZING (`failing`) while the lines not
 * started are dropped. Returns 1 when it stopped it, 0 when it had already settled or stopped.
 */
export const STOP = `
local h = redis.call('HMGET', KEYS[1], 'status', 'settled')
if h[1] == false or h[2] == '1' then return 0 end
if h[1] ~= 'VALIDATING' and h[1] ~= 'IN_PROGRESS' then return 0 end
if ARGV[1] == 'CANCELING' then
  redis.call('HSET', KEYS[1], 'status', 'CANCELING', 'cancelling_at', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'status', 'FINALIZING', 'failing', '1', 'error', ARGV[3])
end
return 1
`;

/**
 * KEYS: meta, results, pending, queued, lock. ARGV: now, results ttl (s), meta ttl (s), expires_at.
 * Stamps the end of a settled batch once and gives its keys their retention. Returns 1 the first
 * time, 0 after.
 */
export const FINALIZE = `
local h = redis.call('HMGET', KEYS[1], 'settled', 'finalized', 'final_status')
if h[1] ~= '1' or h[2] == '1' then return 0 end
redis.call('HSET', KEYS[1], 'status', h[3], 'finished_at', ARGV[1], 'expires_at', ARGV[4], 'finalized', '1')
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return 1
`;

/** One line's outcome, as RECORD_LINES takes it. */
export interface BatchLineOutcome {
  /** The line's job, when it had one in a provider queue (leaves the batch's `queued` set). */
  jobId?: string;
  result: BatchResultLine;
}

/** ARGV of RECORD_LINES for these outcomes. */
export function recordLinesArgs(outcomes: BatchLineOutcome[], now = new Date()): string[] {
  const args = [now.toISOString()];
  for (const o of outcomes) args.push(String(o.result.index), o.jobId ?? '', o.result.error ? 'failed' : 'completed', JSON.stringify(o.result));
  return args;
}
