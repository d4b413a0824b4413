import { QueueName } from '@lib/contracts';

/**
 * Everything the API and the workers read from the environment, validated once before Nest
 * starts. Each field documents its variable, default and unit.
 */
export interface GatewayConfig {
  /** PORT: HTTP port of the API. @defaultValue 8000 */
  port: number;
  /** HOST: bind address. @defaultValue 0.0.0.0 with API_KEYS, 127.0.0.1 without */
  host: string;
  /** REDIS_URL. @defaultValue redis://127.0.0.1:6379 */
  redisUrl: string;
  /** QUEUE_PREFIX: prefix of every Redis key the gateway writes. @defaultValue gw */
  queuePrefix: string;
  /** API_KEYS: comma-separated bearer keys; empty means no auth and loopback only. */
  apiKeys: string[];
  /** API_MAX_BODY_BYTES: largest request body accepted. @defaultValue 67108864 (64 MiB) */
  maxBodyBytes: number;
  /** SYNC_TIMEOUT_MS: how long POST /v1/inference waits before answering 202. @defaultValue 60000 */
  syncTimeoutMs: number;
  /** SYNC_MAX_WAITERS: synchronous requests one API process waits on at once; past it, 202. @defaultValue 10000 */
  syncMaxWaiters: number;
  /** SYNC_SWEEP_INTERVAL_MS: how often waiters re-read their job in case a notice was lost. @defaultValue 2000 */
  syncSweepIntervalMs: number;
  /** JOB_ATTEMPTS: provider calls per job before it fails (retryable errors only). @defaultValue 4 */
  jobAttempts: number;
  /** RETRY_BASE_DELAY_MS: first retry delay; doubles each attempt, with jitter. @defaultValue 1000 */
  retryBaseDelayMs: number;
  /** RETRY_MAX_DELAY_MS: cap on one retry delay (also caps a provider's retry-after). @defaultValue 60000 */
  retryMaxDelayMs: number;
  /** JOB_RETENTION_SECONDS: how long finished jobs (and their results) stay pollable. @defaultValue 86400 */
  jobRetentionSeconds: number;
  /** WORKER_QUEUES: queues this worker serves; undefined ("all", the default) means every queue it has a configured provider for. */
  workerQueues?: QueueName[];
  /** WORKER_CONCURRENCY (and WORKER_CONCURRENCY_<QUEUE>): jobs in flight per queue per process. @defaultValue 32 */
  workerConcurrency: Record<QueueName, number>;
  /** WORKER_LOCK_DURATION_MS: a job whose worker stops renewing its lock for this long is recovered. @defaultValue 30000 */
  workerLockDurationMs: number;
  /** WORKER_SHUTDOWN_GRACE_MS: on SIGTERM, time given to running jobs before they are handed back. @defaultValue 25000 */
  workerShutdownGraceMs: number;
  /** PROVIDER_TIMEOUT_MS: timeout of one provider call. @defaultValue 300000 */
  providerTimeoutMs: number;
  /** MEDIA_MAX_BYTES: largest media file a worker downloads or decodes. @defaultValue 2147483648 (2 GiB) */
  mediaMaxBytes: number;
  /** MEDIA_ALLOW_PRIVATE_URLS: allow media URLs on loopback/private networks. @defaultValue false */
  mediaAllowPrivateUrls: boolean;
  /** MEDIA_TMP_DIR: scratch folder for downloads. @defaultValue <os tmp>/inference-gateway */
  mediaTmpDir: string;
  /** MEDIA_DOWNLOAD_TIMEOUT_MS: total time one download may take. @defaultValue 600000 */
  mediaDownloadTimeoutMs: number;
  openai: { apiKey?: string; baseUrl?: string };
  anthropic: { apiKey?: string; baseUrl?: string };
  google: { project?: string; location: string; vertexBaseUrl?: string; vertexAuth: 'adc' | 'none' };
  /** PLUGINS_DIR: folder of custom inference plugins (not loaded yet). */
  pluginsDir?: string;
  /** LOG_LEVEL: error, warn, log, debug. @defaultValue log */
  logLevel: 'error' | 'warn' | 'log' | 'debug';
}
