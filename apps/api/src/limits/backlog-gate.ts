import { Inject, Injectable } from '@nestjs/common';
import { ErrorType, GatewayError, QueueName } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { QueueRegistry } from '@lib/queue';

/** A count younger than this is trusted while it is far from the bound (ms). */
const REFRESH_MS = 250;
/** What a client is told to wait when a queue is full (s). */
const RETRY_AFTER_SECONDS = 5;

interface Reading {
  count: number;
  at: number;
  /** Jobs this process let in since the count was read. */
  added: number;
  /** A re-read running in the background. */
  refreshing?: boolean;
}

/**
 * QUEUE_MAX_BACKLOG: past that many jobs waiting or delayed on a queue, the API answers 503
 * with Retry-After instead of letting Redis grow without end. The count is read from BullMQ at
 * most every 250 ms, and on every request once it is at the bound, so one API process never
 * overshoots; several may each let in up to a refresh's worth more. While the last count was
 * under half the bound, a stale one is re-read in the background and the request goes on at
 * once: a request after a quiet spell does not wait for a count it does not need.
 */
@Injectable()
export class BacklogGate {
  private readonly readings = new Map<QueueName, Reading>();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly queues: QueueRegistry,
  ) {}

  async admit(queue: QueueName): Promise<void> {
    const max = this.config.queueMaxBacklog;
    if (max === 0) return;
    let reading = this.readings.get(queue);
    const now = Date.now();
    const stale = !reading || now - reading.at > REFRESH_MS;
    if (reading && stale && reading.count + reading.added < max / 2) {
      if (!reading.refreshing) {
        reading.refreshing = true;
        // A turn later: sent now, the count would reach Redis ahead of this request's own job,
        // and the job's write would wait for the end of the turn (coalesceWrites).
        setImmediate(() =>
          void this.read(queue, Date.now()).catch(() => {
            if (reading) reading.refreshing = false; // the next request tries again
          }),
        );
      }
    } else if (!reading || stale || reading.count + reading.added >= max) {
      reading = await this.read(queue, now);
    }
    if (reading.count + reading.added >= max) {
      throw new GatewayError(
        ErrorType.ServiceUnavailable,
        `The ${queue} queue is full (${max} jobs waiting); retry in ${RETRY_AFTER_SECONDS} s`,
        'queue_backlog_full',
        { queue, max_backlog: max },
        { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      );
    }
    reading.added++;
  }

  private async read(queue: QueueName, now: number): Promise<Reading> {
    const counts = await this.queues.get(queue).getJobCounts('waiting', 'prioritized', 'delayed', 'paused');
    const reading: Reading = { count: Object.values(counts).reduce((a, b) => a + b, 0), at: now, added: 0 };
    this.readings.set(queue, reading);
    return reading;
  }
}
