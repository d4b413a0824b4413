import { Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import {
  encodeFailure,
  ErrorType,
  InferenceJobData,
  JobName,
  PackedEmbeddingData,
  RawInferenceResponse,
  TokensUsed,
} from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { inferenceJobOptions } from '@lib/queue';
import { ChildJobQueues } from './child-job-queues';

/** Four characters a token, as the rate limiter estimates (libs/ratelimit token-estimate). */
const CHARS_PER_TOKEN = 4;

export function estimateTextTokens(texts: string[]): number {
  let chars = 0;
  for (const t of texts) chars += t.length;
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

/**
 * A `texts` job larger than one provider call (OPENAI_EMBEDDING_MAX_INPUTS inputs or
 * OPENAI_EMBEDDING_MAX_TOKENS estimated tokens) becomes child jobs on the same queue, one per
 * provider-sized chunk (`<parent id>-p<index>`). Each child is an ordinary job: it passes the
 * shared rate limiter, the exact cache and the retries on its own, so chunks run in parallel
 * on any worker as fast as the limits allow. The parent waits in BullMQ's waiting-children
 * state, holding no worker slot, and when the last child ends it runs again and reassembles
 * the vectors in input order. A child that fails for good fails the parent with its error.
 */
export class EmbeddingSplitter {
  constructor(
    private readonly config: GatewayConfig,
    private readonly queues: ChildJobQueues,
  ) {}

  oversized(texts: string[]): boolean {
    return texts.length > this.config.openaiEmbeddingMaxInputs || estimateTextTokens(texts) > this.config.openaiEmbeddingMaxTokens;
  }

  /** Consecutive chunks, each within the input and token caps (a lone text over the token cap is a chunk of its own). */
  chunks(texts: string[]): string[][] {
    const out: string[][] = [];
    let current: string[] = [];
    let tokens = 0;
    for (const text of texts) {
      const t = estimateTextTokens([text]);
      if (current.length > 0 && (current.length >= this.config.openaiEmbeddingMaxInputs || tokens + t > this.config.openaiEmbeddingMaxTokens)) {
        out.push(current);
        current = [];
        tokens = 0;
      }
      current.push(text);
      tokens += t;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  /** First run of an oversized job: enqueue its chunks as children, then wait for them. */
  async split(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined): Promise<RawInferenceResponse> {
    const { request, receivedAt, requestId } = job.data;
    const chunks = this.chunks(request.inputs.texts as string[]);
    // Recorded first: a re-run after a crash resumes instead of splitting again. Child ids are
    // fixed, so enqueueing twice adds nothing.
    await job.updateData({ ...job.data, split: { chunks: chunks.length } });
    await this.queues.of(job).addBulk(
      chunks.map((texts, i) => ({
        name: JobName.Inference,
        data: { request: { ...request, inputs: { texts } }, receivedAt, requestId } satisfies InferenceJobData,
        opts: { ...inferenceJobOptions(this.config, childId(job.id!, i)), parent: { id: job.id!, queue: job.queueQualifiedName }, ignoreDependencyOnFailure: true },
      })),
    );
    return this.resume(job, token);
  }

  /** Waits (WaitingChildrenError: no worker slot held) until every chunk has ended, then reassembles. */
  async resume(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined): Promise<RawInferenceResponse> {
    if (!token) throw new Error('a split job needs its lock token');
    if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
    const failures = Object.values(await job.getIgnoredChildrenFailures());
    if (failures.length > 0) {
      const reason = failures[0];
      throw new UnrecoverableError(
        reason.startsWith('gw-failure:') ? reason : encodeFailure({ error: { type: ErrorType.Internal, message: 'A chunk of the request failed inside the gateway', code: 'internal_error' }, retryable: false }),
      );
    }
    const response = this.assemble(job, await job.getChildrenValues());
    await job.updateProgress({ chunks_done: job.data.split!.chunks, chunks_total: job.data.split!.chunks });
    return response;
  }

  /** A chunk of this worker's split job is done: the parent's `progress` counts it (approximately, when chunks end together). */
  async chunkDone(job: Job<InferenceJobData, RawInferenceResponse>): Promise<void> {
    if (!job.parent?.id || !CHILD_ID.test(job.id!)) return;
    const parent = await Job.fromId<InferenceJobData, RawInferenceResponse>(this.queues.of(job), job.parent.id);
    const total = parent?.data.split?.chunks;
    if (!parent || !total) return;
    const counts = await parent.getDependenciesCount({ processed: true, ignored: true });
    // This chunk is not counted yet: its result is stored after it returns.
    await parent.updateProgress({ chunks_done: Math.min(total, (counts.processed ?? 0) + (counts.ignored ?? 0) + 1), chunks_total: total });
  }

  private assemble(job: Job<InferenceJobData, RawInferenceResponse>, values: Record<string, RawInferenceResponse>): RawInferenceResponse {
    const total = job.data.split!.chunks;
    const parts = new Array<RawInferenceResponse | undefined>(total);
    for (const [key, value] of Object.entries(values)) {
      const index = Number(/-p(\d+)$/.exec(key)?.[1]);
      if (Number.isInteger(index) && index < total) parts[index] = value;
    }
    const buffers: Buffer[] = [];
    let count = 0;
    let dimensions = 0;
    let usage: TokensUsed | undefined;
    for (const [i, part] of parts.entries()) {
      const data = part?.data as PackedEmbeddingData | { embeddings?: number[][]; dimensions: number } | undefined;
      if (!part || !data) throw new UnrecoverableError(encodeFailure({ error: { type: ErrorType.Internal, message: `Chunk ${i} of the request has no result`, code: 'internal_error' }, retryable: false }));
      if ('embeddings_f32' in data && typeof data.embeddings_f32 === 'string') {
        buffers.push(Buffer.from(data.embeddings_f32, 'base64'));
        count += data.count ?? 0;
      } else if ('embeddings' in data && Array.isArray(data.embeddings)) {
        const rows = data.embeddings;
        const buf = Buffer.allocUnsafe(rows.length * (rows[0]?.length ?? 0) * 4);
        rows.flat().forEach((v, k) => buf.writeFloatLE(v, k * 4));
        buffers.push(buf);
        count += rows.length;
      }
      dimensions = data.dimensions || dimensions;
      if (part.tokens_used) {
        usage = usage ?? { prompt: 0, completion: 0, total: 0 };
        usage.prompt += part.tokens_used.prompt;
        usage.completion += part.tokens_used.completion;
        usage.total += part.tokens_used.total;
      }
    }
    const { request, receivedAt } = job.data;
    const data: PackedEmbeddingData = { embeddings_f32: Buffer.concat(buffers).toString('base64'), count, dimensions };
    return {
      data: data as unknown as Record<string, unknown>,
      provider: request.provider,
      model: request.model,
      tokens_used: usage ?? null,
      latency_ms: Date.now() - receivedAt,
      cached: parts.every((p) => p!.cached),
    };
  }
}

const CHILD_ID = /-p\d+$/;

function childId(parentId: string, index: number): string {
  return `${parentId}-p${index}`;
}
