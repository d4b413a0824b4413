import { QueueName } from '@lib/contracts';
import type { RateLimitsConfig } from './rate-limits';

/**
 * Everything the API and the workers read from the environment, validated once before Nest
 * starts. Each field documents its variable, default and unit.
 */
/** What embeds prompts for the semantic cache: a provider's embedding model, or the builtin E5 extractor. */
export type SemanticCacheEmbedder = { provider: 'openai' | 'google'; model: string } | { provider: 'text_extractor'; model: 'multilingual_e5_large_instruct_v1' };

export interface GatewayConfig {
  /** PORT: HTTP port of the API. @defaultValue 8000 */
  port: number;
  /** HOST: bind address. @defaultValue 0.0.0.0 with API_KEYS, 127.0.0.1 without */
  host: string;
  /** REDIS_URL. @defaultValue redis://127.0.0.1:6379 */
  redisUrl: string;
  /**
   * REDIS_CLUSTER_NODES: comma-separated `host:port` seed nodes of a Redis Cluster. When set,
   * every connection is a cluster client, each queue gets its own hash tag, and REDIS_URL only
   * supplies username, password and TLS (`rediss://`). @defaultValue unset (one Redis at REDIS_URL)
   */
  redisClusterNodes?: Array<{ host: string; port: number }>;
  /** QUEUE_PREFIX: prefix of every Redis key the gateway writes. @defaultValue gw */
  queuePrefix: string;
  /** API_KEYS: comma-separated bearer keys; empty means no auth and loopback only. */
  apiKeys: string[];
  /**
   * ADMIN_API_KEYS: comma-separated keys that open the queue dashboard at /admin/queues, each
   * at least 16 characters and none of them an API_KEYS key. @defaultValue empty: dashboard off (404 admin_disabled)
   */
  adminApiKeys: string[];
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
  /** FFMPEG_PATH: the ffmpeg binary that cuts long audio and video. @defaultValue ffmpeg (found on PATH) */
  ffmpegPath: string;
  /** FFPROBE_PATH: the ffprobe binary that reads a media file's duration and streams. @defaultValue ffprobe (found on PATH) */
  ffprobePath: string;
  /** AUDIO_CHUNK_SECONDS: audio longer than this (or over the provider's upload limit) is transcribed in chunks of about this length, in s. @defaultValue 600 */
  audioChunkSeconds: number;
  /** AUDIO_CHUNK_OVERLAP_SECONDS: audio each chunk repeats from the end of the one before it, in s (merged away). @defaultValue 2 */
  audioChunkOverlapSeconds: number;
  openai: { apiKey?: string; baseUrl?: string };
  anthropic: { apiKey?: string; baseUrl?: string };
  google: { project?: string; location: string; vertexBaseUrl?: string; vertexAuth: 'adc' | 'none' };
  /** RATE_LIMITS_FILE: provider RPM/TPM/concurrency caps (config/limits.yaml; `none` = no caps). */
  rateLimits: RateLimitsConfig;
  /** RATE_LIMIT_MAX_REQUEUES: provider 429s a job sits out (uncharged) before they count as failed attempts. @defaultValue 20 */
  rateLimitMaxRequeues: number;
  /** EMBEDDING_CACHE_TTL_SECONDS: how long the exact embedding cache keeps a vector; 0 = cache off. @defaultValue 0 */
  embeddingCacheTtlSeconds: number;
  /** EMBEDDING_CACHE_MAX_ENTRIES: vectors the exact cache keeps per provider and model (oldest evicted first). @defaultValue 100000 */
  embeddingCacheMaxEntries: number;
  /** COALESCE_WINDOW_MS: how long a worker holds a single-text OpenAI embedding job to merge it with others into one call; 0 = off. @defaultValue 0 */
  coalesceWindowMs: number;
  /** OPENAI_EMBEDDING_MAX_INPUTS: inputs per OpenAI embeddings call; a larger `texts` job is split, a coalesced call is flushed at it. @defaultValue 2048 */
  openaiEmbeddingMaxInputs: number;
  /** OPENAI_EMBEDDING_MAX_TOKENS: estimated tokens (4 characters each) per OpenAI embeddings call, same use. @defaultValue 300000 */
  openaiEmbeddingMaxTokens: number;
  /** API_RATE_LIMIT_RPM: requests per minute per API key (per address without keys); 0 = off. @defaultValue 0 */
  apiRateLimitRpm: number;
  /** API_RATE_LIMIT_BURST: requests a client may send at once after idle time. @defaultValue API_RATE_LIMIT_RPM */
  apiRateLimitBurst: number;
  /** QUEUE_MAX_BACKLOG: jobs waiting or delayed per queue before the API answers 503; 0 = no bound. @defaultValue 100000 */
  queueMaxBacklog: number;
  /** IDEMPOTENCY_TTL_SECONDS: how long an Idempotency-Key keeps answering with its first job. @defaultValue 86400 */
  idempotencyTtlSeconds: number;
  /** PLUGINS_DIR: folder of custom inference plugins, one sub-folder (plugin.json + module) each. @defaultValue unset: no custom plugins */
  pluginsDir?: string;
  /** PLUGIN_TIMEOUT_MS: time one plugin call may take when its manifest sets no `timeout_ms`. @defaultValue 60000 */
  pluginTimeoutMs: number;
  /** PLUGIN_CONCURRENCY: calls in flight per plugin per worker process (one child process each) when its manifest sets no `concurrency`. @defaultValue 2 */
  pluginConcurrency: number;
  /** PLUGIN_KILL_GRACE_MS: after a timeout or cancel, how long a plugin's process may take to stop before it is killed. @defaultValue 2000 */
  pluginKillGraceMs: number;
  /**
   * The builtin `text_extractor@v1` (multilingual-e5-large-instruct) served by a text-embedding
   * server the operator runs. E5_BASE_URL: the server (unset: the extractor answers 503).
   * E5_API: `tei` (POST {base}/embed), `openai` (POST {base}/embeddings) or `auto` (openai when
   * the URL ends in /v1) @defaultValue auto. E5_MODEL: model name sent to OpenAI-compatible servers
   * @defaultValue intfloat/multilingual-e5-large-instruct. E5_MAX_BATCH: texts per server call
   * @defaultValue 32. E5_API_KEY: bearer key for the server @defaultValue unset.
   */
  e5: { baseUrl?: string; api: 'tei' | 'openai'; model: string; maxBatch: number; apiKey?: string };
  /**
   * The semantic cache (`enable_semantic_cache` on chat requests, vCache policy). SEMANTIC_CACHE_EMBEDDER:
   * what embeds prompts: `openai:<model>` (e.g. `openai:text-embedding-3-small`), `google:<model>`
   * (Vertex `multimodalembedding@001`'s text embedding), or the builtin E5 (`text_extractor@v1`, or
   * its feature URI; needs E5_BASE_URL) @defaultValue unset (every lookup is a miss). SEMANTIC_CACHE_DEFAULT_DELTA: the error rate tolerated when a request gives no
   * `cache_delta` @defaultValue 0.02. SEMANTIC_CACHE_TTL_SECONDS: an entry's lifetime, in s @defaultValue 86400.
   * SEMANTIC_CACHE_MAX_ENTRIES: entries per scope, least recently used evicted @defaultValue 100000.
   * SEMANTIC_CACHE_EMBED_TIMEOUT_MS: longest wait for a prompt's embedding, in ms (past it: a miss) @defaultValue 3000.
   * SEMANTIC_CACHE_JUDGE: how an explored answer is compared with the cached one: `exact` (normalised
   * text, or the parsed object of structured output) or `provider:model` of a chat model asked whether
   * both answer the same (its failure falls back to `exact`) @defaultValue exact.
   */
  semanticCache: {
    embedder?: SemanticCacheEmbedder;
    defaultDelta: number;
    ttlSeconds: number;
    maxEntries: number;
    embedTimeoutMs: number;
    judge?: { provider: 'openai' | 'anthropic' | 'google'; model: string };
  };
  /** LOG_LEVEL: error, warn, log, debug. @defaultValue log */
  logLevel: 'error' | 'warn' | 'log' | 'debug';
  /** LOG_FORMAT: `json` (pino, one JSON object per line) or `text` (Nest's console format). @defaultValue json */
  logFormat: 'json' | 'text';
  /** METRICS_PUBLIC: serve the API's GET /metrics without a key (else an API_KEYS or ADMIN_API_KEYS key). @defaultValue false */
  metricsPublic: boolean;
  /** WORKER_METRICS_PORT: port of a worker's GET /metrics and /health; 0 = off. @defaultValue 9464 */
  workerMetricsPort: number;
  /** WORKER_METRICS_HOST: bind address of that port. @defaultValue 0.0.0.0 */
  workerMetricsHost: string;
  /** BATCH_RETENTION_SECONDS: how long a finished batch's results stay downloadable (its status stays readable, as EXPIRED, as long again). @defaultValue 86400 */
  batchRetentionSeconds: number;
  /** BATCH_CALLBACK_SECRET: HMAC-SHA256 key of the `X-Signature` on batch callbacks (at least 16 characters); unset: `callback_url` is refused. @defaultValue unset */
  batchCallbackSecret?: string;
  /** BATCH_MAX_LINES: most request lines one batch may hold; past it the upload fails (batch_too_large). @defaultValue 1000000 */
  batchMaxLines: number;
  /** BATCH_FEED_WINDOW: lines of one batch in its provider queue at once; the rest wait in the batch until the queue drains. @defaultValue 1000 */
  batchFeedWindow: number;
  /**
   * BATCH_RESULTS_DIR: folder (shared by the API and every worker, e.g. one volume) where finished
   * pages of batch results are moved out of Redis, 1000 lines a file. @defaultValue unset: results stay in Redis
   */
  batchResultsDir?: string;
  /** BATCH_CALLBACK_ATTEMPTS: POSTs of a batch's callback before giving up (exponential backoff from RETRY_BASE_DELAY_MS). @defaultValue 8 */
  batchCallbackAttempts: number;
  /** WORKER_HEARTBEAT_INTERVAL_MS: how often a worker refreshes its heartbeat; it counts as gone after 3 intervals without one. @defaultValue 5000 */
  workerHeartbeatIntervalMs: number;
}
