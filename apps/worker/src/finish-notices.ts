import { Worker } from 'bullmq';
import { CompletionNotice } from '@lib/contracts';
import { LuaScript, RedisClient, writeTogether } from '@lib/queue';

/** Results up to this size travel in the completion notice; larger ones are read from the job. */
export const INLINE_NOTICE_MAX_CHARS = 256 * 1024;

/** `{"id":…,"state":"completed"` : a completed job's notice without its closing brace. */
function completedHead(jobId: string): string {
  const head: CompletionNotice = { id: jobId, state: 'completed' };
  return JSON.stringify(head).slice(0, -1);
}

/**
 * A completed job's notice from its serialized result (spliced in, not parsed and serialized
 * again: embeddings make it tens of KB), or its head alone over the inline limit. The same text
 * as NOTICE_IF_COMPLETED_LUA publishes.
 */
export function completedNotice(jobId: string, resultJson: string): string {
  return resultJson.length <= INLINE_NOTICE_MAX_CHARS ? `${completedHead(jobId)},"result":${resultJson}}` : `${completedHead(jobId)}}`;
}

/**
 * KEYS: the queue's completed set, the job's hash. ARGV: job id, notice channel, the notice's
 * head (a JSON object without its closing brace), inline limit (bytes).
 * Publishes the notice with the stored return value only if the job is in the completed set
 * and has one, so that it never announces an attempt that did not complete (a lost lock, a
 * canceled job). Returns 1 when it published.
 */
export const NOTICE_IF_COMPLETED_LUA = `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local value = redis.call('HGET', KEYS[2], 'returnvalue')
if not value then return 0 end
if string.len(value) <= tonumber(ARGV[4]) then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. ',"result":' .. value .. '}')
else
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. '}')
end
return 1
`;
const NOTICE_IF_COMPLETED = new LuaScript(NOTICE_IF_COMPLETED_LUA);

/** BullMQ 5 Scripts internals used here (pinned by finish-notices.spec.ts). */
interface ScriptsInternals {
  execCommand(client: RedisClient, name: string, args: unknown[]): Promise<unknown>;
  moveToFinishedKeys: unknown[];
}

/**
 * Completion notices for sync jobs, published by Redis right behind the moveToFinished that
 * stores the result.
 *
 * The plain way costs two hops after the result is stored: moveToFinished's reply wakes the
 * worker, and the worker's PUBLISH wakes Redis again before the API hears of it. Here, the moment
 * BullMQ writes moveToFinished for a completed job, a script is written on the same connection
 * behind it: Redis runs it right after moveToFinished and publishes the notice from the stored
 * return value, if the job did complete. The worker falls back to its own PUBLISH when the script
 * did not publish (the job was removed at once, a BullMQ whose arguments look different, a Redis
 * Cluster, an error): a notice is never lost to this path, and the API's sweeper still catches
 * one lost on the way.
 *
 * This wraps BullMQ's `Scripts.execCommand` (public in its typings, documented as private) and
 * reads moveToFinished's argument layout (keys, then job id, timestamp, property, value, target).
 */
export class FinishNotices {
  /** Notice channel of each running sync job, by job id; taken when its completion is written. */
  private readonly channels = new Map<string, string>();
  /** Whether the script published, for each job whose completion it followed. */
  private readonly published = new Map<string, Promise<boolean>>();

  /** Makes the worker's completions of sync jobs publish their notices from Redis. */
  attach(worker: Worker): void {
    const scripts = worker.scripts as unknown as ScriptsInternals;
    const exec = scripts.execCommand.bind(scripts);
    scripts.execCommand = (client, name, args) => {
      if (name !== 'moveToFinished') return exec(client, name, args);
      // One write for both: the second would find Redis woken by the first and pay again.
      return writeTogether(client, () => {
        const reply = exec(client, name, args);
        this.afterFinish(client, args, scripts.moveToFinishedKeys.length);
        return reply;
      });
    };
  }

  /** A sync job is about to run: its completion should notify `channel`. */
  expect(jobId: string, channel: string): void {
    this.channels.set(jobId, channel);
  }

  /** The job's run ended without a completion (it threw): nothing to follow. */
  forget(jobId: string): void {
    this.channels.delete(jobId);
  }

  /** True when Redis published the job's notice behind its completion; the entry is consumed. */
  async take(jobId: string): Promise<boolean> {
    this.channels.delete(jobId);
    const published = this.published.get(jobId);
    if (!published) return false;
    this.published.delete(jobId);
    return published;
  }

  private afterFinish(client: RedisClient, args: unknown[], keyCount: number): void {
    const jobId = args[keyCount];
    if (typeof jobId !== 'string') return;
    const channel = this.channels.get(jobId);
    if (channel === undefined) return;
    this.channels.delete(jobId);
    const completed = args[keyCount + 2] === 'returnvalue' && args[keyCount + 4] === 'completed';
    const [completedKey, jobKey] = [args[10], args[11]];
    if (!completed || client.isCluster || typeof completedKey !== 'string' || typeof jobKey !== 'string') return;
    // Written now, synchronously: it lands on the connection right behind moveToFinished.
    const run = NOTICE_IF_COMPLETED.run(client, [completedKey, jobKey], [jobId, channel, completedHead(jobId), INLINE_NOTICE_MAX_CHARS]);
    const published = run.then(
      (n) => n === 1,
      () => false,
    );
    this.published.set(jobId, published);
    // Not published (the attempt did not complete): nobody may come to take it.
    void published.then((ok) => {
      if (!ok && this.published.get(jobId) === published) this.published.delete(jobId);
    });
  }
}
