import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { gatewayVersion } from './build-info';
import { LabelLimiter } from './label-limiter';
import { ScrapeCache } from './scrape-cache';

/** Which process a registry belongs to; each exposes the metrics of its own side. */
export type MetricsRole = 'api' | 'worker';

/** How one attempt of a job ended: `retry` is a failed attempt that BullMQ will run again. */
export type JobOutcome = 'completed' | 'failed' | 'retry' | 'canceled';

/** The labels of a job's metrics; `model` is bounded by a LabelLimiter (it comes from clients). */
export interface JobLabels {
  queue: string;
  provider: string;
  model: string;
  task: string;
}

/** What the API reads at scrape time: jobs per queue and state, live workers per queue. */
export interface QueueSnapshot {
  counts: Record<string, Record<string, number>>;
  workers: Record<string, number>;
}

export interface GatewayMetricsOptions {
  role: MetricsRole;
  /** Node.js process metrics (CPU, memory, event loop lag, GC). @defaultValue true */
  defaultMetrics?: boolean;
  /** Distinct model names per provider before further ones are reported as `other`. @defaultValue 100 */
  maxModelsPerProvider?: number;
}

let processRegistry: Registry | undefined;

/**
 * prom-client's process metrics install a GC observer and an event-loop monitor that cannot be
 * removed, so they are made once per process, however many apps it runs (tests run several).
 */
function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'gateway_' });
  }
  return processRegistry;
}

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Provider calls run from milliseconds (embeddings) to many minutes (long video). */
const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const WAIT_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const JOB_LABELS = ['queue', 'provider', 'model', 'task'] as const;

/**
 * Every metric of the gateway, on a registry of its own (never prom-client's global one, so an
 * API and workers can live in one test process). Names start with `gateway_`.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly models: LabelLimiter;
  /** Node.js process metrics, shared by every GatewayMetrics of the process (see processMetricsRegistry). */
  private processRegistry?: Registry;
  private snapshot?: ScrapeCache<QueueSnapshot>;
  private inFlight?: () => Record<string, number>;

  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly jobs: Counter<(typeof JOB_LABELS)[number] | 'outcome'>;
  private readonly jobDuration: Histogram<(typeof JOB_LABELS)[number] | 'outcome'>;
  private readonly jobWait: Histogram<(typeof JOB_LABELS)[number]>;
  private readonly upstreamErrors: Counter<'provider' | 'status'>;
  private readonly rateLimitWaits: Histogram<'provider' | 'model' | 'reason'>;
  private readonly rateLimitPauses: Counter<'provider' | 'model'>;
  private readonly rateLimitPausedSeconds: Counter<'provider' | 'model'>;
  private readonly cacheLookups: Counter<'kind' | 'result'>;
  private readonly collectErrors: Counter<'source'>;

  constructor(options: GatewayMetricsOptions) {
    const registers = [this.registry];
    this.models = new LabelLimiter(options.maxModelsPerProvider ?? 100);
    if (options.defaultMetrics ?? true) this.processRegistry = processMetricsRegistry();

    new Gauge({ name: 'gateway_build_info', help: 'Always 1; the labels say which gateway this is', labelNames: ['version', 'role'], registers }).set(
      { version: gatewayVersion(), role: options.role },
      1,
    );

    this.httpRequests = new Counter({ name: 'gateway_http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its answer (a synchronous inference includes the job)',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.jobs = new Counter({ name: 'gateway_jobs_total', help: 'Job attempts ended in this worker, by outcome (retry = failed attempt that runs again)', labelNames: [...JOB_LABELS, 'outcome'], registers });
    this.jobDuration = new Histogram({
      name: 'gateway_job_duration_seconds',
      help: 'Run time of one job attempt in a worker (media download + provider call), by outcome',
      labelNames: [...JOB_LABELS, 'outcome'],
      buckets: JOB_BUCKETS,
      registers,
    });
    this.jobWait = new Histogram({
      name: 'gateway_job_queue_wait_seconds',
      help: 'Time a job waited in its queue before a worker first started it (processedOn - timestamp)',
      labelNames: [...JOB_LABELS],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'gateway_upstream_errors_total',
      help: 'Failed provider calls, by provider and HTTP status (timeout / network when there was none)',
      labelNames: ['provider', 'status'],
      registers,
    });
    this.rateLimitWaits = new Histogram({
      name: 'gateway_rate_limit_wait_seconds',
      help: 'Time jobs were set to wait for a provider rate limit before their call, by the limit that held them (rpm, tpm, concurrency, ...)',
      labelNames: ['provider', 'model', 'reason'],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.rateLimitPauses = new Counter({ name: 'gateway_rate_limit_pauses_total', help: "Times a provider's 429 paused its calls", labelNames: ['provider', 'model'], registers });
    this.rateLimitPausedSeconds = new Counter({
      name: 'gateway_rate_limit_paused_seconds_total',
      help: 'Total length of the pauses asked by providers (retry-after)',
      labelNames: ['provider', 'model'],
      registers,
    });
    this.cacheLookups = new Counter({ name: 'gateway_cache_lookups_total', help: 'Result cache lookups, by cache kind and hit/miss', labelNames: ['kind', 'result'], registers });
    this.collectErrors = new Counter({ name: 'gateway_metrics_collect_errors_total', help: 'Scrapes whose queue or worker read failed (Redis unreachable)', labelNames: ['source'], registers });

    if (options.role === 'api') this.registerQueueGauges();
    if (options.role === 'worker') this.registerInFlightGauge();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (gauges read at this moment). */
  async metrics(): Promise<string> {
    const own = await this.registry.metrics();
    return this.processRegistry ? `${own}\n${await this.processRegistry.metrics()}` : own;
  }

  /** `model` as it is reported: bounded per provider (see LabelLimiter). */
  modelLabel(provider: string, model: string): string {
    return this.models.limit(provider, model);
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  jobWaited(labels: JobLabels, ms: number): void {
    this.jobWait.observe(this.bounded(labels), Math.max(0, ms) / 1000);
  }

  jobEnded(labels: JobLabels, outcome: JobOutcome, ms: number): void {
    const l = { ...this.bounded(labels), outcome };
    this.jobs.inc(l);
    this.jobDuration.observe(l, Math.max(0, ms) / 1000);
  }

  /** `status`: the provider's HTTP status, or `timeout` / `network` / `unknown`. */
  upstreamError(provider: string, status: string): void {
    this.upstreamErrors.inc({ provider, status });
  }

  /** A job must wait `ms` for the provider's shared rate limit (`reason`: which limit) before its call. */
  rateLimitWait(provider: string, model: string, ms: number, reason = 'limit'): void {
    this.rateLimitWaits.observe({ provider, model: this.modelLabel(provider, model), reason }, Math.max(0, ms) / 1000);
  }

  /** A provider's 429 paused calls to it for `ms`. */
  rateLimitPause(provider: string, model: string, ms: number): void {
    const labels = { provider, model: this.modelLabel(provider, model) };
    this.rateLimitPauses.inc(labels);
    this.rateLimitPausedSeconds.inc(labels, Math.max(0, ms) / 1000);
  }

  cacheLookup(kind: 'exact' | 'semantic', hit: boolean): void {
    this.cacheLookups.inc({ kind, result: hit ? 'hit' : 'miss' });
  }

  /** API: where the queue and worker gauges read from, cached `cacheMs` between scrapes. */
  setQueueSnapshotSource(load: () => Promise<QueueSnapshot>, cacheMs: number): void {
    this.snapshot = new ScrapeCache(load, cacheMs);
  }

  /** Worker: jobs running in this process per queue, read at scrape time. */
  setInFlightSource(read: () => Record<string, number>): void {
    this.inFlight = read;
  }

  private bounded(labels: JobLabels): JobLabels {
    return { ...labels, model: this.modelLabel(labels.provider, labels.model) };
  }

  private registerQueueGauges(): void {
    const registers = [this.registry];
    const metrics = this;
    // Each gauge is emptied before it is refilled, so a queue that went away leaves no stale
    // series, and a failed read shows as missing data rather than old numbers.
    new Gauge({
      name: 'gateway_queue_jobs',
      help: 'Jobs per queue and state (waiting, prioritized, active, delayed, paused, failed, completed) at scrape time',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const snapshot = await metrics.readSnapshot(true);
        for (const [queue, states] of Object.entries(snapshot?.counts ?? {})) {
          for (const [state, count] of Object.entries(states)) this.set({ queue, state }, count);
        }
      },
    });
    new Gauge({
      name: 'gateway_workers',
      help: 'Live workers serving each queue (from worker heartbeats)',
      labelNames: ['queue'],
      registers,
      async collect() {
        this.reset();
        const snapshot = await metrics.readSnapshot(false);
        for (const [queue, count] of Object.entries(snapshot?.workers ?? {})) this.set({ queue }, count);
      },
    });
  }

  private registerInFlightGauge(): void {
    const metrics = this;
    new Gauge({
      name: 'gateway_worker_jobs_in_flight',
      help: 'Jobs this worker process is running, per queue',
      labelNames: ['queue'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [queue, count] of Object.entries(metrics.inFlight?.() ?? {})) this.set({ queue }, count);
      },
    });
  }

  /** Both gauges share one read per scrape; `countError` so that a failure is counted once. */
  private async readSnapshot(countError: boolean): Promise<QueueSnapshot | undefined> {
    if (!this.snapshot) return undefined;
    try {
      return await this.snapshot.get();
    } catch {
      if (countError) this.collectErrors.inc({ source: 'queues' });
      return undefined;
    }
  }
}
