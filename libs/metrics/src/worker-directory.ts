import { RedisClient, RedisKeys } from '@lib/queue';

/** What a worker says about itself in its heartbeat (`GET /v1/workers` lists these). */
export interface WorkerRecord {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  /** Jobs in flight allowed per queue. */
  concurrency: Record<string, number>;
  /** Jobs running now, per queue. */
  in_flight: Record<string, number>;
  version: string;
  started_at: string;
  last_seen: string;
}

/**
 * Index members whose record has been gone this long are removed by the next heartbeat of any
 * worker. Generous, so that clocks that disagree between machines never remove a live worker
 * (liveness itself is the record's Redis TTL, which no clock skew affects).
 */
const PRUNE_AFTER_MS = 3_600_000;

/**
 * Worker heartbeats in Redis: one record per worker with a TTL (a worker is alive while its
 * record exists), and a sorted set of worker ids as the index, so that listing them needs no
 * SCAN. Each key is written by its own command, so it works on Redis Cluster as well.
 */
export class WorkerDirectory {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async announce(record: WorkerRecord, ttlMs: number): Promise<void> {
    const now = Date.now();
    await this.redis.set(this.keys.workerInfo(record.id), JSON.stringify(record), 'PX', ttlMs);
    await this.redis.zadd(this.keys.workerIndex(), now, record.id);
    await this.redis.zremrangebyscore(this.keys.workerIndex(), '-inf', now - PRUNE_AFTER_MS);
  }

  /** On clean shutdown: the worker disappears at once rather than when its TTL runs out. */
  async remove(id: string): Promise<void> {
    await this.redis.del(this.keys.workerInfo(id));
    await this.redis.zrem(this.keys.workerIndex(), id);
  }

  /** Live workers (those whose record has not expired), oldest first. */
  async list(): Promise<WorkerRecord[]> {
    const ids = await this.redis.zrange(this.keys.workerIndex(), 0, -1);
    const raw = await Promise.all(ids.map((id) => this.redis.get(this.keys.workerInfo(id))));
    const records: WorkerRecord[] = [];
    for (const json of raw) {
      if (!json) continue;
      try {
        records.push(JSON.parse(json) as WorkerRecord);
      } catch {
        // a record we cannot read is skipped, not fatal
      }
    }
    return records.sort((a, b) => a.started_at.localeCompare(b.started_at) || a.id.localeCompare(b.id));
  }

  /** Live workers per queue, for every queue named in `queues` (0 when none). */
  static countByQueue(records: WorkerRecord[], queues: readonly string[]): Record<string, number> {
    const counts: Record<string, number> = Object.fromEntries(queues.map((q) => [q, 0]));
    for (const record of records) for (const q of record.queues) counts[q] = (counts[q] ?? 0) + 1;
    return counts;
  }
}
