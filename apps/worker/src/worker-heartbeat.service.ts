import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { QueueName } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { gatewayVersion, WorkerDirectory, WorkerRecord } from '@lib/metrics';
import { WorkerMetricsService } from './worker-metrics.service';
import { WORKER_QUEUES } from './worker.tokens';

/** A worker that missed this many heartbeats in a row counts as gone. */
const MISSED_BEATS = 3;

/**
 * Tells the API (GET /ready, GET /v1/workers, gateway_workers) that this worker is alive and
 * which queues it serves: a record in Redis refreshed every WORKER_HEARTBEAT_INTERVAL_MS that
 * expires after three missed beats, and is removed at once when the worker starts to shut down
 * (from then on it takes no new jobs, so it no longer makes a queue ready).
 */
@Injectable()
export class WorkerHeartbeatService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Heartbeat');
  readonly id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly startedAt = new Date().toISOString();
  private timer?: NodeJS.Timeout;
  /** The beat being written, so that shutdown removes the record after it, not before. */
  private pending: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(WORKER_QUEUES) private readonly queues: QueueName[],
    private readonly directory: WorkerDirectory,
    private readonly jobs: WorkerMetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await (this.pending = this.beat());
    this.logger.debug(`announced as ${this.id}, every ${this.config.workerHeartbeatIntervalMs} ms`);
    this.timer = setInterval(() => {
      this.pending = this.beat();
    }, this.config.workerHeartbeatIntervalMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.pending;
    await this.directory.remove(this.id).catch((err: Error) => this.logger.warn(`heartbeat not removed: ${err.message}`));
  }

  record(): WorkerRecord {
    return {
      id: this.id,
      hostname: os.hostname(),
      pid: process.pid,
      queues: [...this.queues],
      concurrency: Object.fromEntries(this.queues.map((q) => [q, this.config.workerConcurrency[q]])),
      in_flight: this.inFlight(),
      version: gatewayVersion(),
      started_at: this.startedAt,
      last_seen: new Date().toISOString(),
    };
  }

  /** Every served queue, 0 before its BullMQ Worker has started. */
  private inFlight(): Record<string, number> {
    const running = this.jobs.inFlight();
    return Object.fromEntries(this.queues.map((q) => [q, running[q] ?? 0]));
  }

  private async beat(): Promise<void> {
    try {
      await this.directory.announce(this.record(), this.config.workerHeartbeatIntervalMs * MISSED_BEATS);
      if (this.failing) this.logger.log('heartbeat restored');
      this.failing = false;
    } catch (err) {
      // Said once per outage, not once per beat.
      if (!this.failing) this.logger.warn(`heartbeat failed (this worker may look gone to /ready): ${(err as Error).message}`);
      this.failing = true;
    }
  }
}
