import * as os from 'node:os';
import * as path from 'node:path';
import { ALL_QUEUES, isQueueName, QueueName } from '@lib/contracts';
import { GatewayConfig } from './gateway-config';

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

  const config: GatewayConfig = {
    port: read.int('PORT', 8000, 0, 65535),
    host,
    redisUrl,
    queuePrefix: read.str('QUEUE_PREFIX', 'gw', /^[A-Za-z0-9_{}.-]+$/, 'letters, digits, _ . - { } only'),
    apiKeys,
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
    openai: { apiKey: nonEmpty(env.OPENAI_API_KEY), baseUrl: read.url('OPENAI_BASE_URL') },
    anthropic: { apiKey: nonEmpty(env.ANTHROPIC_API_KEY), baseUrl: read.url('ANTHROPIC_BASE_URL') },
    google: {
      project: nonEmpty(env.GOOGLE_CLOUD_PROJECT),
      location: nonEmpty(env.GOOGLE_CLOUD_LOCATION) ?? 'us-central1',
      vertexBaseUrl: read.url('GOOGLE_VERTEX_BASE_URL'),
      vertexAuth: vertexAuth === 'none' ? 'none' : 'adc',
    },
    pluginsDir: nonEmpty(env.PLUGINS_DIR),
    logLevel: logLevel as GatewayConfig['logLevel'],
  };
  if (config.retryMaxDelayMs < config.retryBaseDelayMs) {
    problems.push('RETRY_MAX_DELAY_MS must be at least RETRY_BASE_DELAY_MS');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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
