import type { helpers as Helpers, protos, v1 } from '@google-cloud/aiplatform';

/**
 * The Vertex SDK costs ~160 MB of memory to load (its protobuf descriptors), so it is loaded
 * only when a Google adapter is built: workers without Google never pay for it.
 */
type AiPlatform = { helpers: typeof Helpers; v1: typeof v1 };
let aiplatform: AiPlatform | undefined;
function loadAiPlatform(): AiPlatform {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  aiplatform ??= require('@google-cloud/aiplatform') as AiPlatform;
  return aiplatform;
}
import { PassThroughClient } from 'google-auth-library';
import { ErrorType, GatewayError, NormalizedRequest, Provider, Task, TokensUsed } from '@lib/contracts';
import { AdapterContext, AdapterResult, InferenceAdapter } from '../inference-adapter';
import { redactSecrets } from '../provider-error';
import { parseStructuredOutput } from '../structured-output';
import { MULTIMODAL_EMBEDDING_DIMENSIONS, MULTIMODAL_VIDEO_DIMENSION, vertexModelId } from './google.tasks';
import { toHttpLikeError } from './vertex-error';

export { toHttpLikeError, VertexError } from './vertex-error';

type GenerateContentRequest = protos.google.cloud.aiplatform.v1.IGenerateContentRequest;
type GenerateContentResponse = protos.google.cloud.aiplatform.v1.IGenerateContentResponse;
type GenerationConfig = protos.google.cloud.aiplatform.v1.IGenerationConfig;
type Part = protos.google.cloud.aiplatform.v1.IPart;
type PredictRequest = protos.google.cloud.aiplatform.v1.IPredictRequest;
type PredictResponse = protos.google.cloud.aiplatform.v1.IPredictResponse;
type Value = protos.google.protobuf.IValue;
type ClientOptions = NonNullable<ConstructorParameters<typeof v1.PredictionServiceClient>[0]>;

/** Vertex embeds at most this much video per `multimodalembedding` request. */
export const VERTEX_VIDEO_MAX_SECONDS = 120;

export interface GoogleAdapterOptions {
  /** GOOGLE_CLOUD_PROJECT; without it, 'local' against a base URL, else the project ADC names. */
  project?: string;
  location: string;
  /** An HTTP(S) stand-in for Vertex (a fake, a proxy): the SDK then speaks REST instead of gRPC. */
  vertexBaseUrl?: string;
  /** 'none' sends no credentials at all (a local fake); 'adc' uses Application Default Credentials. */
  vertexAuth: 'adc' | 'none';
  /** Timeout of one call, in ms. */
  timeoutMs: number;
}

/** A gax call as it leaves `innerApiCalls`: a promise that can still be cancelled. */
type GaxCall<T> = (request: object, options: object) => Promise<[T, ...unknown[]]> & { cancel(): void };

/** Parameters this adapter maps itself; any other passes into `generationConfig` (see below). */
const CHAT_OWN_PARAMETERS = ['temperature', 'max_tokens', 'top_p', 'top_k', 'stop', 'schema', 'schema_name', 'strict'];

/** Vertex's upper-case type names, the mark of a schema written in its OpenAPI dialect. */
const VERTEX_SCHEMA_TYPES = new Set(['STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT']);

/**
 * Gemini chat/vision and `multimodalembedding` through the official Vertex SDK.
 *
 * Calls go through `innerApiCalls`, not the generated `predict()`/`generateContent()`: those
 * chain a `.then` (for logging) that drops gax's `.cancel()`, and without it neither the job's
 * abort signal nor our timeout could stop a call. `retry: null`: the queue owns retries, so 429
 * and 503 must reach us as errors. The timeout is enforced here too, because gax's own
 * `timeout` is a gRPC deadline that its HTTP fallback ignores.
 */
export class GoogleAdapter implements InferenceAdapter {
  readonly provider = Provider.Google;
  readonly tasks = [Task.Chat, Task.MultimodalEmbedding] as const;
  private readonly client: v1.PredictionServiceClient;
  private project?: Promise<string>;

  constructor(private readonly options: GoogleAdapterOptions) {
    this.client = new (loadAiPlatform().v1.PredictionServiceClient)(vertexClientOptions(options));
  }

  run(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    switch (request.task) {
      case Task.Chat:
        return this.chat(request, ctx);
      case Task.MultimodalEmbedding:
        return this.embedMultimodal(request, ctx);
      default:
        throw new GatewayError(ErrorType.BadRequest, `google does not serve the ${request.task} task`, 'task_not_supported');
    }
  }

  /** Closes the client's channel (gRPC) or keep-alive sockets; for shutdown and tests. */
  close(): Promise<void> {
    return this.client.close();
  }

  private async chat(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    const { inputs, parameters } = request;
    const parts: Part[] = (inputs.prompts as string[]).map((text) => ({ text }));
    for (const name of ['image_url', 'image_base64']) {
      if (inputs[name] == null) continue;
      const image = await ctx.media.bytes(name);
      // Raw bytes: the SDK's encoder writes them as base64 on the wire itself.
      parts.push({ inlineData: { mimeType: image.mime, data: image.data } });
    }
    const schema = parameters.schema as Record<string, unknown> | undefined;
    const model = await this.modelPath(request.model);
    const body: GenerateContentRequest = { model, contents: [{ role: 'user', parts }], generationConfig: generationConfig(parameters, schema) };
    if (typeof inputs.system === 'string') body.systemInstruction = { parts: [{ text: inputs.system }] };

    const res = await this.call<GenerateContentResponse>('generateContent', body, { model }, ctx);
    const candidate = res.candidates?.[0];
    // Thought summaries (Gemini 2.5 `includeThoughts`) are not the answer.
    const text = (candidate?.content?.parts ?? [])
      .filter((p) => typeof p.text === 'string' && !p.thought)
      .map((p) => p.text)
      .join('');
    // Vertex's own names (STOP, MAX_TOKENS, SAFETY, ...); a blocked prompt has no candidate.
    const finishReason = String(candidate?.finishReason ?? res.promptFeedback?.blockReason ?? 'unknown');
    const data: Record<string, unknown> = { text, finish_reason: finishReason };
    // 'length' is the name parseStructuredOutput knows for "cut off by max_tokens".
    if (schema) data.parsed = parseStructuredOutput(Provider.Google, text, finishReason === 'MAX_TOKENS' ? 'length' : finishReason);
    const u = res.usageMetadata;
    return { data, tokensUsed: u ? usage(u.promptTokenCount, u.candidatesTokenCount, u.totalTokenCount) : undefined };
  }

  private async embedMultimodal(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    const { inputs, parameters } = request;
    const videoInput = inputs.video_url != null ? 'video_url' : inputs.video_base64 != null ? 'video_base64' : undefined;
    // Checked before any download: both are the client's mistake whatever the media holds.
    const dimension = checkDimension(parameters.dimension, videoInput !== undefined);
    const segment = videoInput ? videoSegmentConfig(parameters) : undefined;

    let instance: Record<string, unknown>;
    if (typeof inputs.text === 'string') {
      // Vertex embeds the first 32 tokens of a text and drops the rest without an error; the
      // gateway cannot count Vertex's tokens, so it passes the text as it is.
      instance = { text: inputs.text };
    } else if (videoInput) {
      // URLs were downloaded by the worker (its size and address checks apply): bytes, never gcsUri.
      const clip = await ctx.media.bytes(videoInput);
      instance = { video: { bytesBase64Encoded: clip.data.toString('base64'), ...(segment && { videoSegmentConfig: segment }) } };
    } else {
      const image = await ctx.media.bytes(inputs.image_url != null ? 'image_url' : 'image_base64');
      instance = { image: { bytesBase64Encoded: image.data.toString('base64') } };
    }

    const endpoint = await this.modelPath(vertexModelId(request.model));
    // One instance per request: Vertex refuses more for this model.
    const body: PredictRequest = { endpoint, instances: [toValue(instance)] };
    if (dimension !== undefined) body.parameters = toValue({ dimension });
    const res = await this.call<PredictResponse>('predict', body, { endpoint }, ctx);
    const raw = res.predictions?.[0];
    const prediction = (raw ? fromValue(raw) : undefined) as VertexEmbeddingPrediction | undefined;

    if (videoInput) {
      const segments = (prediction?.videoEmbeddings ?? []).map((s) => ({
        start_offset_sec: s.startOffsetSec,
        end_offset_sec: s.endOffsetSec,
        embedding: s.embedding,
      }));
      if (segments.length === 0) throw badAnswer('videoEmbeddings');
      return { data: { segments, dimensions: segments[0].embedding?.length ?? MULTIMODAL_VIDEO_DIMENSION } };
    }
    const field = typeof inputs.text === 'string' ? 'textEmbedding' : 'imageEmbedding';
    const embedding = prediction?.[field];
    if (!Array.isArray(embedding)) throw badAnswer(field);
    return { data: { embedding, dimensions: embedding.length } };
  }

  /**
   * One cancellable call: the job's abort signal and the timeout both cancel it (which closes
   * the HTTP request or the gRPC stream), and every error it ends with goes through
   * {@link toHttpLikeError} so that `classifyProviderError` can read it.
   */
  private async call<T>(method: 'predict' | 'generateContent', request: object, routing: Record<string, string>, ctx: AdapterContext): Promise<T> {
    await this.ready();
    if (ctx.signal.aborted) throw abortError();
    const options = {
      retry: null,
      timeout: this.options.timeoutMs,
      // What the generated methods send: Vertex routes gRPC calls by it.
      otherArgs: { headers: { 'x-goog-request-params': routingHeader(routing) } },
    };
    const pending = (this.client.innerApiCalls[method] as GaxCall<T>)(request, options);
    return new Promise<T>((resolve, reject) => {
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => {
        pending.cancel();
        settle(() => reject(abortError()));
      };
      const timer = setTimeout(() => {
        pending.cancel();
        settle(() => reject(new VertexTimeoutError(this.options.timeoutMs)));
      }, this.options.timeoutMs);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        ([res]) => settle(() => resolve(res)),
        (err: unknown) => settle(() => reject(toHttpLikeError(err))),
      );
    });
  }

  /**
   * Builds the stub on first use (over gRPC this loads the credentials). The SDK keeps a failed
   * build for good, so it is dropped here: a metadata server that was briefly away must not
   * break every later job of this worker.
   */
  private async ready(): Promise<void> {
    try {
      await this.client.initialize();
    } catch (err) {
      this.client.predictionServiceStub = undefined;
      throw new GatewayError(
        ErrorType.Internal,
        `google: the Vertex client could not start (${redactSecrets(err instanceof Error ? err.message : String(err))}); the operator must check the Application Default Credentials`,
        'provider_auth_failed',
      );
    }
  }

  private async modelPath(model: string): Promise<string> {
    return `projects/${await this.projectId()}/locations/${this.options.location}/publishers/google/models/${model}`;
  }

  /** Resolved once; a failed ADC look-up is tried again on the next job. */
  private projectId(): Promise<string> {
    const { project, vertexBaseUrl } = this.options;
    if (project) return Promise.resolve(project);
    if (vertexBaseUrl) return Promise.resolve('local');
    this.project ??= this.client.getProjectId().catch((err: unknown) => {
      this.project = undefined;
      throw new GatewayError(
        ErrorType.Internal,
        'google has no project: the operator must set GOOGLE_CLOUD_PROJECT or give Application Default Credentials that name one',
        'provider_not_configured',
        { reason: err instanceof Error ? err.message : String(err) },
      );
    });
    return this.project;
  }
}

/**
 * Client options. Normally gRPC to `<location>-aiplatform.googleapis.com` (the global location
 * has no prefix). With a base URL, the SDK's HTTP/JSON fallback against that host and port:
 * gRPC cannot be answered by a plain HTTP server, and the fallback sends the REST paths Vertex
 * documents. `PassThroughClient` sends no credentials and needs none (no ADC look-up at all).
 */
export function vertexClientOptions(options: GoogleAdapterOptions): ClientOptions {
  const out: ClientOptions = {};
  if (options.vertexBaseUrl) {
    const url = new URL(options.vertexBaseUrl);
    const protocol = url.protocol.replace(/:$/, '');
    out.apiEndpoint = url.hostname;
    out.port = url.port ? Number(url.port) : protocol === 'http' ? 80 : 443;
    out.protocol = protocol;
    out.fallback = true;
  } else {
    out.apiEndpoint = options.location === 'global' ? 'aiplatform.googleapis.com' : `${options.location}-aiplatform.googleapis.com`;
  }
  // Node's own fetch for the HTTP calls: gaxios' default loads node-fetch through a dynamic
  // import(), which Jest's CommonJS sandbox (an in-process worker under test) refuses.
  const transporterOptions = { fetchImplementation: fetch };
  if (options.vertexAuth === 'none') out.authClient = new PassThroughClient({ transporterOptions });
  else if (options.vertexBaseUrl) out.clientOptions = { transporterOptions };
  return out;
}

/**
 * Vertex has two schema fields, and the SDK treats them differently:
 * - `responseSchema` is Vertex's OpenAPI subset with upper-case type names (OBJECT, STRING).
 *   It goes through the SDK's protobuf encoder, which silently drops a lower-case JSON Schema
 *   `type` (leaving TYPE_UNSPECIFIED) and throws on `additionalProperties: false`;
 * - `responseJsonSchema` takes JSON Schema as written (a google.protobuf.Value, untouched).
 * So a schema already in Vertex's dialect goes in `responseSchema`, any other in
 * `responseJsonSchema`; the user's schema is passed through, never rewritten (nothing is
 * upper-cased). Caveat: older Gemini models (before 2.5) may refuse `responseJsonSchema`; their
 * users must write Vertex's dialect.
 */
function generationConfig(parameters: Record<string, unknown>, schema: Record<string, unknown> | undefined): GenerationConfig {
  const config: Record<string, unknown> = {};
  // Other parameters pass through in Vertex's camelCase (seed, presence_penalty, candidate_count,
  // ...); a name GenerationConfig does not have is dropped by the SDK's encoder.
  for (const [key, value] of Object.entries(parameters)) {
    if (!CHAT_OWN_PARAMETERS.includes(key)) config[camelCase(key)] = value;
  }
  if (typeof parameters.temperature === 'number') config.temperature = parameters.temperature;
  if (typeof parameters.max_tokens === 'number') config.maxOutputTokens = parameters.max_tokens;
  if (typeof parameters.top_p === 'number') config.topP = parameters.top_p;
  if (typeof parameters.top_k === 'number') config.topK = parameters.top_k;
  if (parameters.stop != null) config.stopSequences = Array.isArray(parameters.stop) ? parameters.stop : [parameters.stop];
  if (schema) {
    config.responseMimeType = 'application/json';
    if (usesVertexTypes(schema)) config.responseSchema = schema;
    else config.responseJsonSchema = toValue(schema);
  }
  return config as GenerationConfig;
}

function usesVertexTypes(node: unknown, depth = 0): boolean {
  if (typeof node !== 'object' || node === null || depth > 32) return false;
  if (Array.isArray(node)) return node.some((n) => usesVertexTypes(n, depth + 1));
  const type = (node as { type?: unknown }).type;
  if (typeof type === 'string' && VERTEX_SCHEMA_TYPES.has(type)) return true;
  return Object.values(node).some((v) => usesVertexTypes(v, depth + 1));
}

function checkDimension(value: unknown, video: boolean): number | undefined {
  if (value === undefined || value === null) return undefined;
  const allowed: readonly number[] = video ? [MULTIMODAL_VIDEO_DIMENSION] : MULTIMODAL_EMBEDDING_DIMENSIONS;
  if (typeof value === 'number' && allowed.includes(value)) return value;
  const why = video ? `video embeddings are always ${MULTIMODAL_VIDEO_DIMENSION}-d` : `it must be one of ${allowed.join(', ')}`;
  throw new GatewayError(ErrorType.BadRequest, `parameters.dimension ${String(value)} is not offered by multimodalembedding: ${why}`, 'invalid_dimension', {
    dimension: value,
    allowed_dimensions: allowed,
  });
}

/**
 * Vertex's `videoSegmentConfig`. Without `end_offset_sec` Vertex embeds 120 s from the start
 * (or to the end of the clip); a longer window is refused here rather than silently cut. The
 * worker cuts a long video it can decode into windows of at most 120 s before it gets here
 * (apps/worker/src/long-media.service.ts), so this is reached only by media ffprobe cannot read.
 */
function videoSegmentConfig(parameters: Record<string, unknown>): Record<string, number> | undefined {
  const start = num(parameters.start_offset_sec);
  const end = num(parameters.end_offset_sec);
  const interval = num(parameters.interval_sec);
  const from = start ?? 0;
  if (end !== undefined && end <= from) {
    throw new GatewayError(
      ErrorType.BadRequest,
      `parameters.end_offset_sec (${end}) must be greater than parameters.start_offset_sec (${from})`,
      'invalid_video_segment',
      { start_offset_sec: from, end_offset_sec: end },
    );
  }
  if (end !== undefined && end - from > VERTEX_VIDEO_MAX_SECONDS) {
    throw new GatewayError(
      ErrorType.BadRequest,
      `multimodalembedding covers at most ${VERTEX_VIDEO_MAX_SECONDS} s of video per request; ` +
        `end_offset_sec - start_offset_sec is ${end - from} s: ask for at most ${VERTEX_VIDEO_MAX_SECONDS} s (e.g. end_offset_sec ${from + VERTEX_VIDEO_MAX_SECONDS})`,
      'video_too_long',
      { max_seconds: VERTEX_VIDEO_MAX_SECONDS, requested_seconds: end - from },
    );
  }
  const config: Record<string, number> = {};
  if (start !== undefined) config.startOffsetSec = start;
  if (end !== undefined) config.endOffsetSec = end;
  if (interval !== undefined) config.intervalSec = interval;
  return Object.keys(config).length > 0 ? config : undefined;
}

/** A prediction of `multimodalembedding`, as Vertex documents it. */
interface VertexEmbeddingPrediction {
  textEmbedding?: number[];
  imageEmbedding?: number[];
  videoEmbeddings?: Array<{ startOffsetSec?: number; endOffsetSec?: number; embedding?: number[] }>;
}

/** Our own deadline; the name makes `classifyProviderError` call it a retryable timeout. */
class VertexTimeoutError extends Error {
  override readonly name = 'TimeoutError';

  constructor(ms: number) {
    super(`google did not answer within ${ms} ms`);
  }
}

function abortError(): Error {
  const err = new Error('The google call was aborted');
  err.name = 'AbortError';
  return err;
}

function badAnswer(field: string): GatewayError {
  return new GatewayError(ErrorType.Internal, `google answered multimodalembedding without ${field}`, 'provider_bad_response');
}

/** The SDK's Value helpers, typed against the request/response types (they disagree by package). */
function toValue(value: object): Value {
  return loadAiPlatform().helpers.toValue(value) as Value;
}

function fromValue(value: Value): unknown {
  return loadAiPlatform().helpers.fromValue(value as Parameters<typeof Helpers.fromValue>[0]);
}

function routingHeader(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function usage(prompt?: number | null, completion?: number | null, total?: number | null): TokensUsed | undefined {
  if (prompt == null && completion == null && total == null) return undefined;
  const p = prompt ?? 0;
  const c = completion ?? 0;
  return { prompt: p, completion: c, total: total ?? p + c };
}
