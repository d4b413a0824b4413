import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Server } from 'node:http';
import { Job, Worker } from 'bullmq';
import { decodeFailure, InferenceJobData, JobFailure, QueueName, RawInferenceResponse } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { GatewayMetrics, JobLabels, JobOutcome, startMetricsServer, stopMetricsServer, upstreamStatusOf } from '@lib/metrics';

type InferenceWorker = Worker<InferenceJobData, RawInferenceResponse>;
type InferenceJob = Job<InferenceJobData, RawInferenceResponse>;

/**
 * The worker's side of the metrics and its per-job log lines: listens to each BullMQ Worker's
 * events (observeWorker), and serves GET /metrics and /health on WORKER_METRICS_PORT. Every
 * log line about a job carries its `request_id`, so one grep follows a request from the API.
 */
@Injectable()
export class WorkerMetricsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Jobs');
  private readonly serverLogger = new Logger('WorkerMetrics');
  private readonly workers = new Map<QueueName, InferenceWorker>();
  private server?: Server;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
  ) {
    metrics.setInFlightSource(() => this.inFlight());
  }

  async onApplicationBootstrap(): Promise<void> {
    const { workerMetricsPort: port, workerMetricsHost: host } = this.config;
    if (port === 0) return;
    try {
      this.server = await startMetricsServer(this.metrics, port, host);
      this.serverLogger.log(`metrics on http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`);
    } catch (err) {
      // Metrics must not stop the work: a second worker on one host gets a warning, not an exit.
      this.serverLogger.warn(
        `metrics endpoint not started: ${host}:${port}: ${(err as Error).message}. ` +
          'Give each worker on this host its own WORKER_METRICS_PORT, or 0 to turn it off.',
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.server) await stopMetricsServer(this.server);
  }

  /** Called by WorkerHost for each BullMQ Worker it starts. */
  observeWorker(queue: QueueName, worker: InferenceWorker): void {
    this.workers.set(queue, worker);
    worker.on('active', (job) => this.onActive(queue, job));
    worker.on('completed', (job) => this.onCompleted(queue, job));
    worker.on('failed', (job, err) => {
      if (job) this.onFailed(queue, job, err);
    });
  }

  /** Jobs running in this process, per served queue (the heartbeat reports it too). */
  inFlight(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [queue, worker] of this.workers) counts[queue] = runningJobs(worker);
    return counts;
  }

  private onActive(queue: QueueName, job: InferenceJob): void {
    const labels = labelsOf(queue, job);
    // Only the first start: a retry or a job back from a rate-limit sleep has waited for
    // other reasons (backoff, the limiter), which their own metrics measure.
    if (job.attemptsStarted <= 1) this.metrics.jobWaited(labels, (job.processedOn ?? Date.now()) - job.timestamp);
    this.logger.debug({ msg: 'job started', ...this.fields(job, labels), attempt: job.attemptsMade + 1 });
  }

  private onCompleted(queue: QueueName, job: InferenceJob): void {
    const labels = labelsOf(queue, job);
    const ms = runTimeMs(job);
    this.metrics.jobEnded(labels, 'completed', ms);
    this.logger.log({ msg: 'job completed', ...this.fields(job, labels), attempt: job.attemptsMade, duration_ms: ms });
  }

  private onFailed(queue: QueueName, job: InferenceJob, err: Error): void {
    const labels = labelsOf(queue, job);
    const failure = decodeFailure(job.failedReason || err.message);
    const outcome: JobOutcome = failure?.canceled ? 'canceled' : job.finishedOn ? 'failed' : 'retry';
    const ms = runTimeMs(job);
    this.metrics.jobEnded(labels, outcome, ms);
    const upstream = upstreamStatusOf(failure);
    if (upstream) this.metrics.upstreamError(labels.provider, upstream);
    const line = { ...this.fields(job, labels), attempt: job.attemptsMade, duration_ms: ms, ...errorFields(failure) };
    if (outcome === 'canceled') this.logger.log({ msg: 'job canceled', ...line });
    else this.logger.warn({ msg: outcome === 'retry' ? 'job attempt failed; it will be retried' : 'job failed', ...line });
  }

  private fields(job: InferenceJob, labels: JobLabels): Record<string, unknown> {
    return { job_id: job.id, request_id: job.data.requestId, ...labels };
  }
}

function labelsOf(queue: QueueName, job: InferenceJob): JobLabels {
  const request = job.data?.request;
  return { queue, provider: request?.provider ?? queue, model: request?.model ?? 'unknown', task: request?.task ?? 'unknown' };
}

function runTimeMs(job: InferenceJob): number {
  return (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now());
}

/** What a log line says about a failure: its code and status, never the provider's text (it may quote the input). */
function errorFields(failure: JobFailure | undefined): Record<string, unknown> {
  if (!failure) return { error_code: 'internal_error' };
  const status = failure.error.details?.provider_status;
  return { error_type: failure.error.type, error_code: failure.error.code, ...(typeof status === 'number' ? { provider_status: status } : {}) };
}

/**
 * BullMQ 5 has no public count of the jobs a Worker is running; its lock manager tracks exactly
 * those (including jobs that end in a DelayedError or WaitingError, which emit no event).
 * Checked by the operations e2e test, so a BullMQ upgrade that moves it fails loudly there.
 */
function runningJobs(worker: InferenceWorker): number {
  const lockManager = (worker as unknown as { lockManager?: { getActiveJobCount?: () => number } }).lockManager;
  return typeof lockManager?.getActiveJobCount === 'function' ? lockManager.getActiveJobCount() : 0;
}
