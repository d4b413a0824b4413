import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, WaitingChildrenError, WaitingError } from 'bullmq';
import { InferenceJobData, NormalizedRequest, PackedEmbeddingData, Provider, RawInferenceResponse, Task, TokensUsed, vectorToBytes } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BlobStore, REDIS, RedisClient } from '@lib/queue';
import { ExactCache } from '@lib/cache';
import { GatewayMetrics } from '@lib/metrics';
import { EmbeddingCoalescer } from './embedding-coalescer';
import { EmbeddingSplitter, estimateTextTokens } from './embedding-splitter';
import { AdapterRegistry } from './adapter-registry';
import { ChildJobQueues } from './child-job-queues';
import { JobMedia } from './job-media';
import { RateGate } from './rate-gate';

/** Errors that steer BullMQ (sleep, wait for children, hand back, fail for good): passed through as they are. */
export function isControlError(err: unknown): boolean {
  return err instanceof DelayedError || err instanceof WaitingChildrenError || err instanceof WaitingError || err instanceof UnrecoverableError;
}

/**
 * The text-embedding path of the worker (OpenAI `text` / `texts`): an oversized `texts` job is
 * split into child jobs (EmbeddingSplitter); otherwise the exact cache answers what it holds,
 * the misses (each distinct text once) go upstream in one call through the rate gate, or for a
 * single text through the coalescer, and the new vectors are cached. Results are packed
 * float32 (libs/contracts packed-vectors); `cached` is true only when every vector was a hit.
 * Provider errors are thrown as they are, for the processor to classify.
 */
@Injectable()
export class EmbeddingRunner {
  private readonly logger = new Logger(EmbeddingRunner.name);
  private readonly cache: ExactCache;
  private readonly splitter: EmbeddingSplitter;
  readonly coalescer: EmbeddingCoalescer;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) redis: RedisClient,
    childQueues: ChildJobQueues,
    private readonly blobs: BlobStore,
    private readonly gate: RateGate,
    private readonly metrics: GatewayMetrics,
    private readonly adapters: AdapterRegistry,
  ) {
    this.cache = new ExactCache(redis, config.queuePrefix, { ttlSeconds: config.embeddingCacheTtlSeconds, maxEntries: config.embeddingCacheMaxEntries });
    this.splitter = new EmbeddingSplitter(config, childQueues);
    this.coalescer = new EmbeddingCoalescer(
      { windowMs: config.coalesceWindowMs, maxInputs: config.openaiEmbeddingMaxInputs, maxTokens: config.openaiEmbeddingMaxTokens },
      gate,
      (request, texts, signal) => this.upstream(request, texts, signal),
    );
  }

  /**
   * OpenAI text embeddings take this path; everything else the processor's generic one (so does
   * a request asking for `encoding_format` other than float: its vectors are not numbers).
   */
  handles(request: NormalizedRequest): boolean {
    const { inputs, parameters } = request;
    if (request.provider !== Provider.OpenAI || request.task !== Task.Embedding) return false;
    if (parameters.encoding_format !== undefined && parameters.encoding_format !== 'float') return false;
    return typeof inputs.text === 'string' || (Array.isArray(inputs.texts) && inputs.texts.length > 0);
  }

  async process(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, signal: AbortSignal): Promise<RawInferenceResponse> {
    const { request, receivedAt } = job.data;
    if (job.data.split) return this.splitter.resume(job, token);
    const single = typeof request.inputs.text === 'string';
    const texts = single ? [request.inputs.text as string] : (request.inputs.texts as string[]);
    if (!single && this.splitter.oversized(texts)) return this.splitter.split(job, token);

    const scope = { provider: request.provider, model: request.model, parameters: request.parameters };
    const found = await this.lookup(scope, texts);
    const misses = [...new Set(texts.filter((_, i) => !found[i]))];
    let usage: TokensUsed | undefined;
    if (misses.length > 0) {
      const fresh = new Map<string, Buffer>();
      if (single && this.coalescer.enabled) {
        const out = await this.coalescer.embed(job, token, signal, misses[0], estimateTextTokens(misses));
        fresh.set(misses[0], out.vector);
        usage = out.usage;
      } else {
        const ticket = await this.gate.enter(job, token, estimateTextTokens(misses));
        try {
          const out = await this.upstream(request, misses, signal);
          usage = out.usage;
          misses.forEach((t, i) => fresh.set(t, out.vectors[i]));
        } finally {
          void this.gate.leave(ticket, usage);
        }
      }
      await this.cache.put(scope, [...fresh].map(([text, vector]) => ({ text, vector }))).catch((err: Error) => this.logger.warn(`exact cache write: ${err.message}`));
      texts.forEach((t, i) => (found[i] ??= fresh.get(t)));
    }
    if (job.parent) void this.splitter.chunkDone(job).catch(() => undefined);
    const vectors = found as Buffer[];
    const dimensions = vectors[0].length / 4;
    const data: PackedEmbeddingData = single ? { embedding_f32: vectors[0].toString('base64'), dimensions } : { embeddings_f32: Buffer.concat(vectors).toString('base64'), count: vectors.length, dimensions };
    return {
      data: data as unknown as Record<string, unknown>,
      provider: request.provider,
      model: request.model,
      tokens_used: usage ?? (misses.length === 0 ? { prompt: 0, completion: 0, total: 0 } : null),
      latency_ms: Date.now() - receivedAt,
      cached: misses.length === 0,
    };
  }

  /** Cache hits by position; a cache that cannot be read counts as all misses (the call still works). */
  private async lookup(scope: { provider: string; model: string; parameters: Record<string, unknown> }, texts: string[]): Promise<Array<Buffer | undefined>> {
    if (!this.cache.enabled) return texts.map(() => undefined);
    const found = await this.cache.get(scope, texts).catch((err: Error) => {
      this.logger.warn(`exact cache read: ${err.message}`);
      return texts.map(() => undefined);
    });
    for (const v of found) this.metrics.cacheLookup('exact', v !== undefined);
    return found;
  }

  /** One provider call for `texts` (admitted already); float32 vectors in order. */
  private async upstream(request: NormalizedRequest, texts: string[], signal: AbortSignal): Promise<{ vectors: Buffer[]; usage?: TokensUsed }> {
    const media = new JobMedia({}, this.blobs, this.config, signal);
    try {
      // One text goes as a string, as the client sent it; several as a list.
      const inputs = texts.length === 1 ? { text: texts[0] } : { texts };
      const out = await this.adapters.get(request.provider)!.run({ ...request, inputs }, { signal, media });
      const data = out.data as { embedding?: number[]; embeddings?: number[][] };
      const rows = data.embeddings ?? (data.embedding ? [data.embedding] : []);
      if (rows.length !== texts.length) throw new Error(`the provider answered ${rows.length} embeddings for ${texts.length} inputs`);
      return { vectors: rows.map(vectorToBytes), usage: out.tokensUsed };
    } finally {
      await media.cleanup();
    }
  }
}
