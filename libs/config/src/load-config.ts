import { statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ALL_QUEUES, isQueueName, QueueName } from '@lib/contracts';
import { GatewayConfig } from './gateway-config';
import { loadRateLimits } from './rate-limits';

/** Thrown with every problem found, each with how to fix it. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host.startsWith('127.');
}

/** Reads and validates the configuration; throws a ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): GatewayConfig {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const apiKeys = (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  const adminApiKeys = parseAdminKeys(env.ADMIN_API_KEYS, apiKeys, problems);
  const host = env.HOST?.trim() || (apiKeys.length > 0 ? '0.0.0.0' : '127.0.0.1');
  if (apiKeys.length === 0 && !isLoopbackHost(host)) {
    problems.push(
      `HOST=${host} but API_KEYS is empty: without keys the API only binds to loopback. ` +
        'Set API_KEYS=key1,key2 or unset HOST.',
    );
  }

  const redisUrl = env.REDIS_URL?.trim() || 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(redisUrl)) {
    problems.push(`REDIS_URL=${redact(redisUrl)} must start with redis:// or rediss://`);
  }
  const redisClusterNodes = parseClusterNodes(env.REDIS_CLUSTER_NODES, redisUrl, problems);

  const workerQueues = parseQueues(env.WORKER_QUEUES, problems);
  const defaultConcurrency = read.int('WORKER_CONCURRENCY', 32, 1, 10_000);
  const workerConcurrency = {} as Record<QueueName, number>;
  for (const queue of ALL_QUEUES) {
    workerConcurrency[queue] = read.int(`WORKER_CONCURRENCY_${queue.toUpperCase()}`, defaultConcurrency, 1, 10_000);
  }

  const vertexAuth = (env.GOOGLE_VERTEX_AUTH?.trim() || 'adc').toLowerCase();
  if (vertexAuth !== 'adc' && vertexAuth !== 'none') {
    problems.push(`GOOGLE_VERTEX_AUTH=${vertexAuth} must be "adc" (Application Default Credentials) or "none"`);
  }
  const logLevel = (env.LOG_LEVEL?.trim() || 'log').toLowerCase();
  if (!['error', 'warn', 'log', 'debug'].includes(logLevel)) {
    problems.push(`LOG_LEVEL=${logLevel} must be one of error, warn, log, debug`);
  }
  const logFormat = (env.LOG_FORMAT?.trim() || 'json').toLowerCase();
  if (logFormat !== 'json' && logFormat !== 'text') {
    problems.push(`LOG_FORMAT=${logFormat} must be "json" (one JSON object per line) or "text"`);
  }

  const e5 = parseE5(env, read, problems);
  const config: GatewayConfig = {
    port: read.int('PORT', 8000, 0, 65535),
    host,
    redisUrl,
    redisClusterNodes,
    queuePrefix: read.str('QUEUE_PREFIX', 'gw', /^[A-Za-z0-9_{}.-]+$/, 'letters, digits, _ . - { } only'),
    apiKeys,
    adminApiKeys,
    maxBodyBytes: read.int('API_MAX_BODY_BYTES', 64 * 1024 * 1024, 1024, 2 ** 31),
    syncTimeoutMs: read.int('SYNC_TIMEOUT_MS', 60_000, 0, 3_600_000),
    syncMaxWaiters: read.int('SYNC_MAX_WAITERS', 10_000, 0, 1_000_000),
    syncSweepIntervalMs: read.int('SYNC_SWEEP_INTERVAL_MS', 2_000, 50, 600_000),
    jobAttempts: read.int('JOB_ATTEMPTS', 4, 1, 100),
    retryBaseDelayMs: read.int('RETRY_BASE_DELAY_MS', 1_000, 1, 3_600_000),
    retryMaxDelayMs: read.int('RETRY_MAX_DELAY_MS', 60_000, 1, 3_600_000),
    jobRetentionSeconds: read.int('JOB_RETENTION_SECONDS', 86_400, 1, 365 * 86_400),
    workerQueues,
    workerConcurrency,
    workerLockDurationMs: read.int('WORKER_LOCK_DURATION_MS', 30_000, 1_000, 3_600_000),
    workerShutdownGraceMs: read.int('WORKER_SHUTDOWN_GRACE_MS', 25_000, 0, 3_600_000),
    providerTimeoutMs: read.int('PROVIDER_TIMEOUT_MS', 300_000, 100, 3_600_000),
    mediaMaxBytes: read.int('MEDIA_MAX_BYTES', 2 * 1024 ** 3, 1, 2 ** 45),
    mediaAllowPrivateUrls: read.bool('MEDIA_ALLOW_PRIVATE_URLS', false),
    mediaTmpDir: env.MEDIA_TMP_DIR?.trim() || path.join(os.tmpdir(), 'inference-gateway'),
    mediaDownloadTimeoutMs: read.int('MEDIA_DOWNLOAD_TIMEOUT_MS', 600_000, 100, 24 * 3_600_000),
    ffmpegPath: env.FFMPEG_PATH?.trim() || 'ffmpeg',
    ffprobePath: env.FFPROBE_PATH?.trim() || 'ffprobe',
    audioChunkSeconds: read.int('AUDIO_CHUNK_SECONDS', 600, 30, 3_600),
    audioChunkOverlapSeconds: read.int('AUDIO_CHUNK_OVERLAP_SECONDS', 2, 0, 10),
    openai: { apiKey: nonEmpty(env.OPENAI_API_KEY), baseUrl: read.url('OPENAI_BASE_URL') },
    anthropic: { apiKey: nonEmpty(env.ANTHROPIC_API_KEY), baseUrl: read.url('ANTHROPIC_BASE_URL') },
    google: {
      project: nonEmpty(env.GOOGLE_CLOUD_PROJECT),
      location: nonEmpty(env.GOOGLE_CLOUD_LOCATION) ?? 'us-central1',
      vertexBaseUrl: read.url('GOOGLE_VERTEX_BASE_URL'),
      vertexAuth: vertexAuth === 'none' ? 'none' : 'adc',
    },
    rateLimits: loadRateLimits(nonEmpty(env.RATE_LIMITS_FILE), problems),
    rateLimitMaxRequeues: read.int('RATE_LIMIT_MAX_REQUEUES', 20, 0, 10_000),
    embeddingCacheTtlSeconds: read.int('EMBEDDING_CACHE_TTL_SECONDS', 0, 0, 365 * 86_400),
    embeddingCacheMaxEntries: read.int('EMBEDDING_CACHE_MAX_ENTRIES', 100_000, 1, 1_000_000_000),
    coalesceWindowMs: read.int('COALESCE_WINDOW_MS', 0, 0, 1_000),
    openaiEmbeddingMaxInputs: read.int('OPENAI_EMBEDDING_MAX_INPUTS', 2048, 1, 2048),
    openaiEmbeddingMaxTokens: read.int('OPENAI_EMBEDDING_MAX_TOKENS', 300_000, 1, 10_000_000),
    apiRateLimitRpm: read.int('API_RATE_LIMIT_RPM', 0, 0, 10_000_000),
    apiRateLimitBurst: read.int('API_RATE_LIMIT_BURST', 0, 0, 10_000_000),
    queueMaxBacklog: read.int('QUEUE_MAX_BACKLOG', 100_000, 0, 1_000_000_000),
    idempotencyTtlSeconds: read.int('IDEMPOTENCY_TTL_SECONDS', 86_400, 1, 365 * 86_400),
    pluginsDir: nonEmpty(env.PLUGINS_DIR),
    pluginTimeoutMs: read.int('PLUGIN_TIMEOUT_MS', 60_000, 100, 24 * 3_600_000),
    pluginConcurrency: read.int('PLUGIN_CONCURRENCY', 2, 1, 256),
    pluginKillGraceMs: read.int('PLUGIN_KILL_GRACE_MS', 2_000, 0, 600_000),
    e5,
    semanticCache: parseSemanticCache(env, read, problems, e5),
    logLevel: logLevel as GatewayConfig['logLevel'],
    logFormat: logFormat === 'text' ? 'text' : 'json',
    metricsPublic: read.bool('METRICS_PUBLIC', false),
    workerMetricsPort: read.int('WORKER_METRICS_PORT', 9464, 0, 65535),
    workerMetricsHost: env.WORKER_METRICS_HOST?.trim() || '0.0.0.0',
    workerHeartbeatIntervalMs: read.int('WORKER_HEARTBEAT_INTERVAL_MS', 5_000, 100, 600_000),
    batchRetentionSeconds: read.int('BATCH_RETENTION_SECONDS', 86_400, 1, 365 * 86_400),
    batchCallbackSecret: parseCallbackSecret(env.BATCH_CALLBACK_SECRET, problems),
    batchMaxLines: read.int('BATCH_MAX_LINES', 1_000_000, 1, 100_000_000),
    batchFeedWindow: read.int('BATCH_FEED_WINDOW', 1_000, 1, 1_000_000),
    batchCallbackAttempts: read.int('BATCH_CALLBACK_ATTEMPTS', 8, 1, 100),
    batchResultsDir: nonEmpty(env.BATCH_RESULTS_DIR),
  };
  if (config.redisClusterNodes && /[{}]/.test(config.queuePrefix)) {
    problems.push(
      `QUEUE_PREFIX=${config.queuePrefix} has braces, which would put every queue in one cluster slot; ` +
        'with REDIS_CLUSTER_NODES the gateway gives each queue its own hash tag: use a prefix without { }',
    );
  }
  if (config.apiRateLimitBurst === 0) config.apiRateLimitBurst = config.apiRateLimitRpm;
  if (config.idempotencyTtlSeconds > config.jobRetentionSeconds) {
    problems.push(
      `IDEMPOTENCY_TTL_SECONDS=${config.idempotencyTtlSeconds} is longer than JOB_RETENTION_SECONDS=${config.jobRetentionSeconds}: ` +
        'a key would outlive the job it answers with; lower it or keep jobs longer',
    );
  }
  if (config.pluginsDir && !statSync(config.pluginsDir, { throwIfNoEntry: false })?.isDirectory()) {
    problems.push(`PLUGINS_DIR=${config.pluginsDir} is not a folder; create it (one sub-folder per plugin) or unset PLUGINS_DIR`);
  }
  if (config.batchResultsDir && !statSync(config.batchResultsDir, { throwIfNoEntry: false })?.isDirectory()) {
    problems.push(`BATCH_RESULTS_DIR=${config.batchResultsDir} is not a folder; create it (shared by the API and the workers) or unset BATCH_RESULTS_DIR`);
  }
  if (config.retryMaxDelayMs < config.retryBaseDelayMs) {
    problems.push('RETRY_MAX_DELAY_MS must be at least RETRY_BASE_DELAY_MS');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * `host:port` seeds of a Redis Cluster (`[v6]:port` for IPv6). A cluster has database 0 only,
 * so a REDIS_URL that selects another one is a mistake worth stopping for.
 */
function parseClusterNodes(raw: string | undefined, redisUrl: string, problems: string[]): GatewayConfig['redisClusterNodes'] {
  const value = raw?.trim();
  if (!value) return undefined;
  const nodes: Array<{ host: string; port: number }> = [];
  const entries = value.split(',').map((n) => n.trim()).filter(Boolean);
  if (entries.length === 0) problems.push('REDIS_CLUSTER_NODES lists no node; give host:port seeds or unset it');
  for (const entry of entries) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535) {
      problems.push(`REDIS_CLUSTER_NODES entry "${entry}" must be host:port, e.g. redis-0.redis:6379,redis-1.redis:6379`);
      continue;
    }
    nodes.push({ host: match[1].replace(/^\[|\]$/g, ''), port });
  }
  const db = /^rediss?:\/\/[^/]*\/(\d+)/.exec(redisUrl)?.[1];
  if (db !== undefined && db !== '0') {
    problems.push(`REDIS_URL selects database ${db}, but a Redis Cluster has database 0 only: drop the /${db} with REDIS_CLUSTER_NODES`);
  }
  return nodes;
}

/** Dashboard keys are never echoed in a problem: they are named by position. */
function parseAdminKeys(raw: string | undefined, apiKeys: string[], problems: string[]): string[] {
  const keys = (raw ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  keys.forEach((key, i) => {
    if (key.length < 16) {
      problems.push(`ADMIN_API_KEYS key #${i + 1} is ${key.length} characters; use at least 16 (e.g. openssl rand -hex 24)`);
    }
    if (apiKeys.includes(key)) {
      problems.push(`ADMIN_API_KEYS key #${i + 1} is also in API_KEYS; the dashboard needs keys of its own`);
    }
  });
  return keys;
}

/** The callback signing key is never echoed in a problem. */
function parseCallbackSecret(raw: string | undefined, problems: string[]): string | undefined {
  const secret = nonEmpty(raw);
  if (secret !== undefined && secret.length < 16) {
    problems.push(`BATCH_CALLBACK_SECRET is ${secret.length} characters; use at least 16 (e.g. openssl rand -hex 32)`);
  }
  return secret;
}

/** `provider:model` with a provider of `providers` (the model trimmed), or undefined. */
function providerModel<P extends string>(raw: string, providers: readonly P[]): { provider: P; model: string } | undefined {
  const colon = raw.indexOf(':');
  const provider = raw.slice(0, colon) as P;
  const model = raw.slice(colon + 1);
  return colon > 0 && model.length > 0 && providers.includes(provider) ? { provider, model: model.trim() } : undefined;
}

/** The builtin E5 extractor as a semantic cache embedder: by its name or its feature URI. */
const E5_EMBEDDER = /^(?:mixpeek:\/\/)?text_extractor@v1(?:\/multilingual_e5_large_instruct_v1)?$/;

/** The semantic cache's embedder (`openai:<model>`, `google:<model>`, `text_extractor@v1`) and bounds. */
function parseSemanticCache(env: Env, read: EnvReader, problems: string[], e5: GatewayConfig['e5']): GatewayConfig['semanticCache'] {
  const raw = nonEmpty(env.SEMANTIC_CACHE_EMBEDDER);
  let embedder: GatewayConfig['semanticCache']['embedder'];
  if (raw !== undefined) {
    // The adapters with text embeddings (OpenAI or any OpenAI-compatible server at OPENAI_BASE_URL;
    // Vertex's multimodal embedding, whose text embedding shares its space), and the builtin E5.
    const named = providerModel(raw, ['openai', 'google'] as const);
    if (named) embedder = named;
    else if (E5_EMBEDDER.test(raw)) {
      embedder = { provider: 'text_extractor', model: 'multilingual_e5_large_instruct_v1' };
      if (!e5.baseUrl) problems.push(`SEMANTIC_CACHE_EMBEDDER=${raw} needs E5_BASE_URL (the text-embedding server behind the builtin E5 extractor)`);
    } else {
      problems.push(
        `SEMANTIC_CACHE_EMBEDDER=${raw} must be provider:model with provider openai or google (the adapters with text embeddings), ` +
          'e.g. openai:text-embedding-3-small or google:multimodalembedding@001, or text_extractor@v1 (the builtin E5)',
      );
    }
  }
  const rawDelta = env.SEMANTIC_CACHE_DEFAULT_DELTA?.trim();
  const defaultDelta = rawDelta ? Number(rawDelta) : 0.02;
  if (!(defaultDelta >= 0 && defaultDelta <= 1)) problems.push(`SEMANTIC_CACHE_DEFAULT_DELTA=${rawDelta} must be a number from 0 to 1 (the tolerated error rate, e.g. 0.02)`);
  const rawJudge = nonEmpty(env.SEMANTIC_CACHE_JUDGE);
  let judge: GatewayConfig['semanticCache']['judge'];
  if (rawJudge !== undefined && rawJudge !== 'exact') {
    judge = providerModel(rawJudge, ['openai', 'anthropic', 'google'] as const);
    if (!judge) problems.push(`SEMANTIC_CACHE_JUDGE=${rawJudge} must be exact or provider:model of a chat model (provider openai, anthropic or google), e.g. openai:gpt-4o-mini`);
  }
  return {
    embedder,
    judge,
    defaultDelta,
    ttlSeconds: read.int('SEMANTIC_CACHE_TTL_SECONDS', 86_400, 1, 365 * 86_400),
    maxEntries: read.int('SEMANTIC_CACHE_MAX_ENTRIES', 100_000, 1, 10_000_000),
    embedTimeoutMs: read.int('SEMANTIC_CACHE_EMBED_TIMEOUT_MS', 3_000, 50, 60_000),
  };
}

/** The builtin E5 extractor's server: TEI's /embed, or an OpenAI-compatible /embeddings (auto: by a trailing /v1). */
function parseE5(env: Env, read: EnvReader, problems: string[]): GatewayConfig['e5'] {
  const baseUrl = read.url('E5_BASE_URL');
  const api = (env.E5_API?.trim() || 'auto').toLowerCase();
  if (!['auto', 'tei', 'openai'].includes(api)) {
    problems.push(`E5_API=${api} must be "tei" (text-embeddings-inference /embed), "openai" (/v1/embeddings) or "auto"`);
  }
  const chosen = api === 'tei' || api === 'openai' ? api : baseUrl && /\/v1$/.test(new URL(baseUrl).pathname) ? 'openai' : 'tei';
  return {
    baseUrl,
    api: chosen,
    model: nonEmpty(env.E5_MODEL) ?? 'intfloat/multilingual-e5-large-instruct',
    maxBatch: read.int('E5_MAX_BATCH', 32, 1, 4096),
    apiKey: nonEmpty(env.E5_API_KEY),
  };
}

function parseQueues(raw: string | undefined, problems: string[]): QueueName[] | undefined {
  const value = raw?.trim();
  if (!value || value === 'all' || value === '*') return undefined;
  const names = value.split(',').map((q) => q.trim().toLowerCase()).filter(Boolean);
  const unknown = names.filter((n) => !isQueueName(n));
  if (unknown.length > 0) {
    problems.push(`WORKER_QUEUES names unknown queue(s) ${unknown.join(', ')}; known: ${ALL_QUEUES.join(', ')} (or "all")`);
  }
  return [...new Set(names.filter(isQueueName))];
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}

/** Hides the password of a URL so it can be printed. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name}=${raw} must be a whole number from ${min} to ${max} (default ${fallback})`);
      return fallback;
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.env[name]?.trim().toLowerCase();
    if (!raw) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.problems.push(`${name}=${raw} must be true or false (default ${fallback})`);
    return fallback;
  }

  str(name: string, fallback: string, pattern: RegExp, rule: string): string {
    const raw = this.env[name]?.trim();
    if (!raw) return fallback;
    if (!pattern.test(raw)) {
      this.problems.push(`${name}=${raw} is not allowed: ${rule}`);
      return fallback;
    }
    return raw;
  }

  url(name: string): string | undefined {
    const raw = this.env[name]?.trim();
    if (!raw) return undefined;
    try {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      return raw.replace(/\/+$/, '');
    } catch {
      this.problems.push(`${name}=${redact(raw)} must be an http(s) URL, e.g. http://127.0.0.1:8080/v1`);
      return undefined;
    }
  }
}
