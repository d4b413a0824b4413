import { Inject, Injectable, Logger } from '@nestjs/common';
import { InferenceJobData, Provider, RawInferenceResponse, Task } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { noMedia } from '@lib/providers';
import { REDIS, RedisClient } from '@lib/queue';
import { GatewayMetrics } from '@lib/metrics';
import { decide, Neighbour, SemanticCacheStore, semanticScopeOf, vectorOf } from '@lib/cache';
import { TextExtractor } from '@lib/plugins';
import { ProviderLimiter } from '@lib/ratelimit';
import { AdapterRegistry } from './adapter-registry';
import { AnswerJudge } from './answer-judge';
import { runIfRoomNow } from './now-or-never';

/**
 * What the processor does with a lookup: return `response` (served from cache), or run the
 * model and hand the fresh answer's `data` to `record` (which learns from it off the request path).
 */
export interface SemanticLookup {
  response?: RawInferenceResponse;
  record?: (data: Record<string, unknown>) => void;
}

const PASS: SemanticLookup = {};

/** How stale (ms) this worker's view of a scope's entries may be: saves a Redis round trip on busy scopes. */
const SYNC_INTERVAL_MS = 25;

const NO_MEDIA = noMedia('the semantic cache embedder');

/** The builtin E5 embeds prompts as queries with this instruction (its model card's wording for duplicate questions). */
const E5_SIMILAR_PROMPTS_TASK = 'Given a question, retrieve questions that are semantically equivalent to the given question';

/**
 * The semantic cache in front of chat requests that ask for it (`enable_semantic_cache`): the
 * prompt is embedded by the configured embedder (an OpenAI or Vertex model through the gateway's
 * own adapters, or the builtin E5 through its text-embedding server), the
 * nearest entry of the request's scope is found (SemanticCacheStore), and the vCache policy
 * (libs/cache/src/vcache-policy.ts) decides between the cached answer and a fresh call whose
 * answer then teaches the entry. Any failure of the cache (embedder error or timeout, no room
 * under the embedder's rate limits right now, Redis) is a miss, never a failed or stalled request.
 */
@Injectable()
export class SemanticCacheService {
  private readonly logger = new Logger('SemanticCache');
  private readonly store: SemanticCacheStore;
  private readonly embedder?: string;
  private readonly e5?: TextExtractor;
  private readonly judge: AnswerJudge;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) redis: RedisClient,
    private readonly adapters: AdapterRegistry,
    private readonly metrics: GatewayMetrics,
    private readonly limiter: ProviderLimiter,
  ) {
    const { embedder, ttlSeconds, maxEntries } = config.semanticCache;
    this.embedder = embedder ? `${embedder.provider}:${embedder.model}` : undefined;
    if (embedder?.provider === 'text_extractor') this.e5 = new TextExtractor(config);
    this.judge = new AnswerJudge(config, adapters, limiter);
    this.store = new SemanticCacheStore(redis, config.queuePrefix, { ttlMs: ttlSeconds * 1000, maxEntries, syncIntervalMs: SYNC_INTERVAL_MS });
  }

  async lookup(job: InferenceJobData, signal: AbortSignal): Promise<SemanticLookup> {
    if (!job.semanticCache || job.request.task !== Task.Chat) return PASS;
    const target = this.embedder ? semanticScopeOf(job.request, this.embedder) : undefined;
    if (!target) return this.miss(PASS);
    const { scope } = target;
    const delta = job.semanticCache.delta ?? this.config.semanticCache.defaultDelta;
    try {
      const vector = await this.embed(target.prompt, signal);
      const neighbour = await this.store.nearest(scope, vector);
      if (neighbour === undefined) return this.miss(PASS);
      if (neighbour === null) return this.miss({ record: (data) => this.offPath(this.store.insert(scope, vector, JSON.stringify(data))) });
      if (decide(neighbour.observations, neighbour.similarity, delta, Math.random, neighbour.scope) === 'exploit') {
        const cached = await this.store.answer(scope, neighbour.id, true);
        if (cached !== null) {
          this.metrics.cacheLookup('semantic', true);
          const { request, receivedAt } = job;
          return { response: { data: JSON.parse(cached), provider: request.provider, model: request.model, tokens_used: null, latency_ms: Date.now() - receivedAt, cached: true } };
        }
      }
      return this.miss({ record: (data) => this.offPath(this.learn(scope, target.prompt, vector, neighbour, data)) });
    } catch (err) {
      this.logger.debug?.(`semantic cache lookup failed, served fresh: ${(err as Error).message}`);
      return this.miss(PASS);
    }
  }

  /** Judges the fresh answer against the entry's (answer-judge.ts), records the outcome, and caches the prompt as a new entry when they differ. */
  private async learn(scope: string, prompt: string, vector: Float32Array, neighbour: Neighbour, fresh: Record<string, unknown>): Promise<void> {
    const cached = await this.store.answer(scope, neighbour.id, false);
    const correct = cached !== null && (await this.judge.same(prompt, JSON.parse(cached), fresh));
    if (cached !== null) await this.store.observe(scope, neighbour.id, { similarity: neighbour.similarity, correct });
    if (!correct) await this.store.insert(scope, vector, JSON.stringify(fresh));
  }

  /** The prompt's unit embedding, or an error after SEMANTIC_CACHE_EMBED_TIMEOUT_MS. */
  private async embed(prompt: string, signal: AbortSignal): Promise<Float32Array> {
    const timeoutMs = this.config.semanticCache.embedTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    let timer: NodeJS.Timeout | undefined;
    // The race is a backstop: the abort already ends the SDK call, but an adapter that ignored it must not hold the request.
    const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`embedder timed out after ${timeoutMs} ms`)), timeoutMs)));
    try {
      const out = await Promise.race([this.runEmbedder(prompt, both), expired]);
      const embedding = out.data.embedding;
      if (!Array.isArray(embedding) || embedding.length === 0) throw new Error('the embedder returned no vector');
      return vectorOf(embedding as number[]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One embedding of `prompt`, as `data.embedding`, from whichever embedder is configured. */
  private async runEmbedder(prompt: string, signal: AbortSignal): Promise<{ data: Record<string, unknown> }> {
    const embedder = this.config.semanticCache.embedder!;
    if (embedder.provider === 'text_extractor') return this.e5!.run({ text: prompt }, { task: E5_SIMILAR_PROMPTS_TASK }, signal);
    const adapter = this.adapters.get(embedder.provider as Provider);
    if (!adapter) throw new Error(`the embedder's provider ${embedder.provider} is not configured on this worker`);
    // Vertex embeds text through its multimodal model (the first 32 tokens of the prompt).
    const task = embedder.provider === 'google' ? Task.MultimodalEmbedding : Task.Embedding;
    const request = { provider: embedder.provider as Provider, model: embedder.model, task, inputs: { text: prompt }, parameters: {} };
    return runIfRoomNow(this.limiter, adapter, request, { signal, media: NO_MEDIA });
  }

  private miss(lookup: SemanticLookup): SemanticLookup {
    this.metrics.cacheLookup('semantic', false);
    return lookup;
  }

  private offPath(work: Promise<unknown>): void {
    work.catch((err: unknown) => this.logger.debug?.(`semantic cache update failed: ${(err as Error).message}`));
  }
}
