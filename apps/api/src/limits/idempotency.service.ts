import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { QueueName, RawInferenceRequest, RequestValidationError } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { REDIS } from '@lib/queue';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface Claim {
  /** The job this key stands for (derived from the key, so every process agrees on it). */
  jobId: string;
  /** The key was used before with the same body: answer with that job, call nothing. */
  replay: boolean;
}

/**
 * `Idempotency-Key`: within IDEMPOTENCY_TTL_SECONDS the same key (per API key) with the same
 * body is the same job, and never a second provider call. The job id is derived from the key,
 * so two racing requests enqueue one job (BullMQ ignores an id it already holds). Reusing a
 * key with another body is a 422.
 */
@Injectable()
export class IdempotencyService {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: Redis | Cluster,
  ) {}

  async claim(scope: string, key: string, queue: QueueName, body: RawInferenceRequest): Promise<Claim> {
    if (!KEY_PATTERN.test(key)) {
      throw RequestValidationError.single(['header', 'idempotency-key'], 'Idempotency-Key must be 1 to 255 visible ASCII characters', 'value_error');
    }
    const digest = createHash('sha256').update(`${scope}\n${key}`).digest('hex');
    const jobId = `${queue}-${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
    const fingerprint = createHash('sha256').update(stableJson(body)).digest('hex');
    const redisKey = this.redisKey(digest);
    const set = await this.redis.set(redisKey, fingerprint, 'EX', this.config.idempotencyTtlSeconds, 'NX');
    if (set === 'OK') return { jobId, replay: false };
    const stored = await this.redis.get(redisKey);
    if (stored !== null && stored !== fingerprint) {
      throw RequestValidationError.single(
        ['header', 'idempotency-key'],
        'This Idempotency-Key was already used with a different request body; use a new key for a new request',
        'idempotency_key_reused',
      );
    }
    return { jobId, replay: true };
  }

  /** Gives the key up when its request was refused before anything was enqueued. */
  async release(scope: string, key: string): Promise<void> {
    const digest = createHash('sha256').update(`${scope}\n${key}`).digest('hex');
    await this.redis.del(this.redisKey(digest));
  }

  private redisKey(digest: string): string {
    return `${this.config.queuePrefix}:idem:${digest}`;
  }
}

/** JSON with object keys sorted, so that key order does not make two bodies differ. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
