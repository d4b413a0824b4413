import { Injectable } from '@nestjs/common';
import { ALL_QUEUES } from '@lib/contracts';
import { GatewayMetrics, QueueSnapshot, WorkerDirectory } from '@lib/metrics';
import { QueueRegistry } from '@lib/queue';

/** Scrapes closer together than this share one read of Redis (2 s). */
const QUEUE_STATS_CACHE_MS = 2_000;
/** Every state a job can be in, as BullMQ's getJobCounts names them. */
const STATES = ['waiting', 'prioritized', 'active', 'delayed', 'paused', 'failed', 'completed'] as const;

/** Feeds gateway_queue_jobs and gateway_workers: read from BullMQ and the heartbeats at scrape time. */
@Injectable()
export class QueueStatsService {
  constructor(
    private readonly queues: QueueRegistry,
    private readonly directory: WorkerDirectory,
    metrics: GatewayMetrics,
  ) {
    metrics.setQueueSnapshotSource(() => this.read(), QUEUE_STATS_CACHE_MS);
  }

  async read(): Promise<QueueSnapshot> {
    const [counts, workers] = await Promise.all([
      Promise.all(ALL_QUEUES.map(async (queue) => [queue, await this.queues.get(queue).getJobCounts(...STATES)] as const)),
      this.directory.list(),
    ]);
    return { counts: Object.fromEntries(counts), workers: WorkerDirectory.countByQueue(workers, ALL_QUEUES) };
  }
}
