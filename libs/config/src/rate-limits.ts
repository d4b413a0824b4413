import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ALL_QUEUES, isQueueName, QueueName } from '@lib/contracts';

/** One set of caps; an absent cap is not enforced. */
export interface RateLimit {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute (estimated before the call, reconciled after). */
  tpm?: number;
  /** Calls in flight at once, across every worker. */
  concurrency?: number;
}

/** The caps of one provider queue and of its models. */
export interface ProviderLimits extends RateLimit {
  /**
   * Fraction of every per-minute cap kept unused, and the burst the limiter allows: any 60 s
   * window then carries at most the cap, whatever algorithm the provider counts with.
   * @defaultValue 0.03
   */
  headroom: number;
  /**
   * How much later than its slot a call may reach the provider (queue promotion, process
   * start-up, network), in ms. The burst shrinks by this much so that the cap holds at the
   * provider even for calls that arrive late. @defaultValue 1000
   */
  jitterMs: number;
  /** Output tokens charged for a chat request that names no `max_tokens`. @defaultValue 1024 */
  defaultMaxTokens: number;
  /**
   * Give back tokens a call was charged for but did not use. Off by default: OpenAI counts
   * `max_tokens` at admission and keeps it, so a refund would overrun its limit.
   * @defaultValue false
   */
  refundUnusedTokens: boolean;
  /** Per-model caps, checked as well as the provider's; a name ending in `*` is a prefix. */
  models: Record<string, RateLimit>;
}

export interface RateLimitsConfig {
  /** The file read, or undefined when RATE_LIMITS_FILE=none. */
  source?: string;
  providers: Partial<Record<QueueName, ProviderLimits>>;
}

const DEFAULTS = { headroom: 0.03, jitterMs: 1000, defaultMaxTokens: 1024, refundUnusedTokens: false };
const CAPS = ['rpm', 'tpm', 'concurrency'] as const;
const PROVIDER_KEYS = new Set<string>([...CAPS, 'headroom', 'jitter_ms', 'default_max_tokens', 'refund_unused_tokens', 'models']);

/** The shipped defaults: config/limits.yaml at the package root. */
export function defaultLimitsFile(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'config'))) return path.join(dir, 'config', 'limits.yaml');
    dir = path.dirname(dir);
  }
  return path.resolve('config', 'limits.yaml');
}

/**
 * Reads RATE_LIMITS_FILE (`none` turns provider limits off). Every problem is pushed to
 * `problems` with the file, the key and what is allowed.
 */
export function loadRateLimits(file: string | undefined, problems: string[]): RateLimitsConfig {
  if (file === 'none') return { providers: {} };
  const source = path.resolve(file ?? defaultLimitsFile());
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (err) {
    problems.push(`RATE_LIMITS_FILE=${source} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); point it at a limits file or set it to none`);
    return { source, providers: {} };
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    problems.push(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    return { source, providers: {} };
  }
  return { source, providers: parseLimits(doc ?? {}, source, problems) };
}

export function parseLimits(doc: unknown, where: string, problems: string[]): Partial<Record<QueueName, ProviderLimits>> {
  const out: Partial<Record<QueueName, ProviderLimits>> = {};
  if (!isObject(doc)) {
    problems.push(`${where}: expected a mapping with "providers:"`);
    return out;
  }
  const headroom = fraction(doc.headroom, `${where}: headroom`, problems) ?? DEFAULTS.headroom;
  const jitterMs = millis(doc.jitter_ms, `${where}: jitter_ms`, problems) ?? DEFAULTS.jitterMs;
  for (const key of Object.keys(doc)) {
    if (!['providers', 'headroom', 'jitter_ms'].includes(key)) problems.push(`${where}: unknown key "${key}" (known: headroom, jitter_ms, providers)`);
  }
  const providers = doc.providers ?? {};
  if (!isObject(providers)) {
    problems.push(`${where}: providers must be a mapping of queue name to limits`);
    return out;
  }
  for (const [name, raw] of Object.entries(providers)) {
    const at = `${where}: providers.${name}`;
    if (!isQueueName(name)) {
      problems.push(`${at}: unknown provider queue (known: ${ALL_QUEUES.join(', ')})`);
      continue;
    }
    if (!isObject(raw)) {
      problems.push(`${at}: expected a mapping of rpm, tpm, concurrency, models`);
      continue;
    }
    for (const key of Object.keys(raw)) if (!PROVIDER_KEYS.has(key)) problems.push(`${at}: unknown key "${key}" (known: ${[...PROVIDER_KEYS].join(', ')})`);
    const models: Record<string, RateLimit> = {};
    if (raw.models !== undefined && !isObject(raw.models)) problems.push(`${at}.models: expected a mapping of model name to limits`);
    for (const [model, m] of Object.entries(isObject(raw.models) ? raw.models : {})) {
      if (!isObject(m)) {
        problems.push(`${at}.models.${model}: expected a mapping of rpm, tpm, concurrency`);
        continue;
      }
      for (const key of Object.keys(m)) if (!(CAPS as readonly string[]).includes(key)) problems.push(`${at}.models.${model}: unknown key "${key}" (known: ${CAPS.join(', ')})`);
      models[model] = caps(m, `${at}.models.${model}`, problems);
    }
    out[name] = {
      ...caps(raw, at, problems),
      headroom: fraction(raw.headroom, `${at}.headroom`, problems) ?? headroom,
      jitterMs: millis(raw.jitter_ms, `${at}.jitter_ms`, problems) ?? jitterMs,
      defaultMaxTokens: count(raw.default_max_tokens, `${at}.default_max_tokens`, problems) ?? DEFAULTS.defaultMaxTokens,
      refundUnusedTokens: flag(raw.refund_unused_tokens, `${at}.refund_unused_tokens`, problems) ?? DEFAULTS.refundUnusedTokens,
      models,
    };
  }
  return out;
}

/** The model's own caps: an exact name first, then the longest matching `prefix*`. */
export function modelLimits(limits: ProviderLimits, model: string): RateLimit | undefined {
  const exact = limits.models[model];
  if (exact) return exact;
  let best: { len: number; limit: RateLimit } | undefined;
  for (const [name, limit] of Object.entries(limits.models)) {
    if (!name.endsWith('*')) continue;
    const prefix = name.slice(0, -1);
    if (model.startsWith(prefix) && (!best || prefix.length > best.len)) best = { len: prefix.length, limit };
  }
  return best?.limit;
}

function caps(raw: Record<string, unknown>, at: string, problems: string[]): RateLimit {
  const out: RateLimit = {};
  for (const cap of CAPS) {
    const value = count(raw[cap], `${at}.${cap}`, problems);
    if (value !== undefined) out[cap] = value;
  }
  return out;
}

function count(value: unknown, at: string, problems: string[]): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1e12) {
    problems.push(`${at}=${JSON.stringify(value)} must be a whole number from 1 to 1e12 (leave it out for no cap)`);
    return undefined;
  }
  return value;
}

function fraction(value: unknown, at: string, problems: string[]): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !(value > 0 && value < 0.5)) {
    problems.push(`${at}=${JSON.stringify(value)} must be a number above 0 and below 0.5 (default ${DEFAULTS.headroom})`);
    return undefined;
  }
  return value;
}

function millis(value: unknown, at: string, problems: string[]): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 60_000) {
    problems.push(`${at}=${JSON.stringify(value)} must be a whole number of ms from 0 to 60000 (default ${DEFAULTS.jitterMs})`);
    return undefined;
  }
  return value;
}

function flag(value: unknown, at: string, problems: string[]): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    problems.push(`${at}=${JSON.stringify(value)} must be true or false`);
    return undefined;
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
