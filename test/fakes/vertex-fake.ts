/**
 * A small, dependency-free fake of the Vertex AI REST API (built on `node:http` only), as the
 * `@google-cloud/aiplatform` SDK calls it in HTTP fallback mode:
 *   const fake = await VertexFake.start();
 *   const url = new URL(fake.baseUrl);
 *   const client = new v1.PredictionServiceClient({
 *     apiEndpoint: url.hostname, port: Number(url.port), protocol: 'http', fallback: true,
 *     // google-auth-library: no credentials, no ADC look-up; Node's fetch, as gaxios' default
 *     // (node-fetch through a dynamic import()) does not load inside Jest.
 *     authClient: new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } }),
 *   });
 *
 * What the SDK (google-gax 5 fallback) sends, observed: `POST /v1/projects/{p}/locations/{l}/
 * publishers/google/models/{model}:{predict|generateContent}?$alt=json%3Benum-encoding=int`,
 * with the model id URL-encoded (`multimodalembedding%40001`), `content-type: application/json`,
 * `x-goog-api-client: gax/5.0.8-fallback gapic/6.9.0 ... rest/5.0.8`, `x-goog-request-params:
 * endpoint=...` (or `model=...`), and no `authorization` header with PassThroughClient. Enums
 * inside requests arrive as numbers (the query asks for `enum-encoding=int`), e.g. a
 * `responseSchema` `type: 'OBJECT'` arrives as `type: 6`; answers may use names or numbers.
 * The SDK does not retry: a 429/503 here reaches the caller as one error.
 *
 * Endpoints:
 * - `:predict` for `multimodalembedding*`: one deterministic embedding per instance (text/image
 *   of `parameters.dimension`, default 1408; video: one 1408-d segment per interval, default
 *   16 s, between the start and end offsets, default 0 and start + 120; the video is not decoded);
 * - `:generateContent` for any other model: `"echo: " + user text` (+ ` [images: N]`), or JSON
 *   made from `responseJsonSchema` / `responseSchema` when `responseMimeType` is JSON.
 * Errors use Google's shape: `{ error: { code, message, status } }`.
 *
 * Run directly (`node dist/test/fakes/vertex-fake.js --port 8090 --latency 20 --no-record`) it
 * prints `VERTEX_FAKE_URL=<baseUrl>` and runs until SIGTERM/SIGINT.
 */
import { createHash } from 'node:crypto';
import type * as http from 'node:http';
import { type FakeInjectedResponse, FakeServer, type FakeServerOptions, type OutgoingResponse, readJsonBody, runFakeFromCli, splitUrl } from './fake-server';
import { fakeEmbedding, sampleFromSchema } from './openai-fake';

export interface VertexRecordedRequest {
  method: string;
  /** Decoded path without the query, e.g. '/v1/projects/p/locations/l/publishers/google/models/multimodalembedding@001:predict'. */
  path: string;
  /** The path exactly as it arrived (still URL-encoded), without the query. */
  rawPath: string;
  /** The query string without '?', e.g. '$alt=json%3Benum-encoding=int'. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON (the raw string if it was not valid JSON, undefined if empty). */
  body: unknown;
}

export interface VertexInjectedResponse extends FakeInjectedResponse {
  /**
   * JSON-encoded before sending (a Buffer is sent raw). When omitted, Google's error body for
   * the status: `{ error: { code, message, status: 'RESOURCE_EXHAUSTED' | ... } }`.
   */
  body?: unknown;
}

export type VertexFakeOptions = FakeServerOptions;

type Json = Record<string, unknown>;

const JSON_CT = 'application/json; charset=UTF-8';
export const VERTEX_FAKE_DIMENSIONS = [128, 256, 512, 1408];
const VIDEO_DIMENSION = 1408;
const VIDEO_MAX_SECONDS = 120;
const VIDEO_DEFAULT_INTERVAL = 16;
const VIDEO_MIN_INTERVAL = 4;
/** Gemini bills an image as 258 prompt tokens. */
const IMAGE_TOKENS = 258;

const ROUTE = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):([A-Za-z]+)$/;

/** Google's canonical status name for an HTTP status (cloud.google.com/apis/design/errors). */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  403: "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist).",
  404: 'Requested entity was not found.',
  429: 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
  504: 'Deadline exceeded.',
};

export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? (status >= 500 ? 'INTERNAL' : status >= 400 ? 'FAILED_PRECONDITION' : 'OK');
}

export function googleErrorBody(status: number, message?: string): Json {
  return { error: { code: status, message: message ?? DEFAULT_MESSAGES[status] ?? `Injected error (HTTP ${status})`, status: statusName(status) } };
}

/** Thrown by handlers to produce a Google-shaped error response. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function jsonResponse(status: number, body: unknown): OutgoingResponse {
  return { status, headers: { 'content-type': JSON_CT }, body: JSON.stringify(body) };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function approxTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// predict (multimodalembedding)

function predict(model: string, body: Json): OutgoingResponse {
  if (!model.toLowerCase().startsWith('multimodalembedding')) {
    throw new ApiError(404, `Publisher Model \`publishers/google/models/${model}\` does not serve predict in VertexFake (only multimodalembedding).`);
  }
  const instances = body.instances;
  if (!Array.isArray(instances) || instances.length === 0) throw new ApiError(400, 'instances must not be empty.');
  if (instances.length > 1) throw new ApiError(400, `${model} takes exactly one instance per request; got ${instances.length}.`);
  const parameters = isObject(body.parameters) ? body.parameters : {};
  let dimension = 1408;
  if (parameters.dimension !== undefined) {
    if (typeof parameters.dimension !== 'number' || !VERTEX_FAKE_DIMENSIONS.includes(parameters.dimension)) {
      throw new ApiError(400, `Invalid dimension ${JSON.stringify(parameters.dimension)}: must be one of ${VERTEX_FAKE_DIMENSIONS.join(', ')}.`);
    }
    dimension = parameters.dimension;
  }
  const predictions = instances.map((instance) => embedInstance(model, instance, dimension));
  return jsonResponse(200, { predictions, deployedModelId: '' });
}

function embedInstance(model: string, instance: unknown, dimension: number): Json {
  if (!isObject(instance)) throw new ApiError(400, 'Each instance must be an object.');
  const out: Json = {};
  if (typeof instance.text === 'string') out.textEmbedding = Array.from(fakeEmbedding(model, `text:${instance.text}`, dimension));
  if (isObject(instance.image)) out.imageEmbedding = Array.from(fakeEmbedding(model, `image:${mediaKey(instance.image)}`, dimension));
  if (isObject(instance.video)) out.videoEmbeddings = videoEmbeddings(model, instance.video);
  if (Object.keys(out).length === 0) throw new ApiError(400, 'The instance needs one of text, image or video.');
  return out;
}

function mediaKey(media: Json): string {
  if (typeof media.bytesBase64Encoded === 'string' && media.bytesBase64Encoded) return sha256(media.bytesBase64Encoded);
  if (typeof media.gcsUri === 'string' && media.gcsUri) return sha256(media.gcsUri);
  throw new ApiError(400, 'Media needs bytesBase64Encoded or gcsUri.');
}

/** One segment per interval, as Vertex answers; the video itself is not decoded. */
function videoEmbeddings(model: string, video: Json): Json[] {
  const key = mediaKey(video);
  const cfg = isObject(video.videoSegmentConfig) ? video.videoSegmentConfig : {};
  const start = typeof cfg.startOffsetSec === 'number' ? cfg.startOffsetSec : 0;
  const interval = typeof cfg.intervalSec === 'number' ? cfg.intervalSec : VIDEO_DEFAULT_INTERVAL;
  // Vertex embeds at most 120 s per request: a longer window is cut there too.
  const end = Math.min(typeof cfg.endOffsetSec === 'number' ? cfg.endOffsetSec : start + VIDEO_MAX_SECONDS, start + VIDEO_MAX_SECONDS);
  if (interval < VIDEO_MIN_INTERVAL) throw new ApiError(400, `videoSegmentConfig.intervalSec must be at least ${VIDEO_MIN_INTERVAL}; got ${interval}.`);
  if (end <= start) throw new ApiError(400, 'videoSegmentConfig.endOffsetSec must be greater than startOffsetSec.');
  const segments: Json[] = [];
  for (let s = start; s < end; s += interval) {
    segments.push({
      startOffsetSec: s,
      endOffsetSec: Math.min(s + interval, end),
      embedding: Array.from(fakeEmbedding(model, `video:${key}:${s}`, VIDEO_DIMENSION)),
    });
  }
  return segments;
}

// ---------------------------------------------------------------------------------------------
// generateContent (Gemini)

/** Vertex's Schema.Type, by number (as the SDK sends it) and name. */
const VERTEX_TYPES: Record<string, string> = {
  '1': 'string',
  '2': 'number',
  '3': 'integer',
  '4': 'boolean',
  '5': 'array',
  '6': 'object',
  STRING: 'string',
  NUMBER: 'number',
  INTEGER: 'integer',
  BOOLEAN: 'boolean',
  ARRAY: 'array',
  OBJECT: 'object',
};

/** Vertex's OpenAPI-subset schema (numeric or upper-case types) -> the JSON Schema `sampleFromSchema` reads. */
export function fromVertexSchema(schema: unknown, depth = 0): unknown {
  if (depth > 32) return schema;
  if (Array.isArray(schema)) return schema.map((s) => fromVertexSchema(s, depth + 1));
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'type' && (typeof v === 'string' || typeof v === 'number')) out.type = VERTEX_TYPES[String(v)] ?? (typeof v === 'string' ? v.toLowerCase() : undefined);
    else if (k === 'properties' && isObject(v)) out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, fromVertexSchema(s, depth + 1)]));
    else if (k === 'items' || k === 'anyOf') out[k] = fromVertexSchema(v, depth + 1);
    else out[k] = v;
  }
  return out;
}

function generateContent(model: string, body: Json, requestId: string): OutgoingResponse {
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) {
    throw new ApiError(400, 'Unable to submit request because it must include at least one parts field, which describes the prompt input.');
  }
  const texts: string[] = [];
  let images = 0;
  let promptChars = 0;
  for (const content of contents) {
    if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      throw new ApiError(400, 'Unable to submit request because it has an empty contents field or a content without parts.');
    }
    const user = content.role === undefined || content.role === 'user';
    for (const part of content.parts) {
      if (!isObject(part)) continue;
      if (typeof part.text === 'string') {
        promptChars += part.text.length;
        if (user) texts.push(part.text);
      } else if (isObject(part.inlineData) || isObject(part.fileData)) {
        images++;
      }
    }
  }
  const system = isObject(body.systemInstruction) && Array.isArray(body.systemInstruction.parts) ? body.systemInstruction.parts : [];
  for (const part of system) if (isObject(part) && typeof part.text === 'string') promptChars += part.text.length;

  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  let text: string;
  if (config.responseMimeType === 'application/json') {
    const schema = config.responseJsonSchema ?? (config.responseSchema !== undefined ? fromVertexSchema(config.responseSchema) : undefined);
    text = JSON.stringify(schema !== undefined ? sampleFromSchema(schema) : { text: texts.join('\n') });
  } else {
    text = 'echo: ' + texts.join('\n') + (images > 0 ? ` [images: ${images}]` : '');
  }
  let finishReason = 'STOP';
  const max = config.maxOutputTokens;
  if (typeof max === 'number' && approxTokens(text.length) > max) {
    text = text.slice(0, max * 4);
    finishReason = 'MAX_TOKENS';
  }
  const promptTokenCount = approxTokens(promptChars) + images * IMAGE_TOKENS;
  const candidatesTokenCount = approxTokens(text.length);
  return jsonResponse(200, {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason, index: 0 }],
    usageMetadata: { promptTokenCount, candidatesTokenCount, totalTokenCount: promptTokenCount + candidatesTokenCount },
    modelVersion: model,
    createTime: new Date().toISOString(),
    responseId: requestId,
  });
}

// ---------------------------------------------------------------------------------------------
// the fake

interface VertexRequest extends VertexRecordedRequest {
  jsonError: boolean;
}

/** `failNext`, `hang`, `count` and `waitForRequests` match suffixes (e.g. ':predict') of the decoded path. */
export class VertexFake extends FakeServer<VertexRecordedRequest, VertexRequest, VertexInjectedResponse> {
  private constructor(server: http.Server, port: number, opts: VertexFakeOptions) {
    // No '/v1': the SDK takes host and port apart (`apiEndpoint`, `port`).
    super(server, port, opts, { name: 'VertexFake', baseUrl: `http://127.0.0.1:${port}`, requestIdHeader: 'x-request-id', jsonContentType: JSON_CT });
  }

  static start(opts: VertexFakeOptions = {}): Promise<VertexFake> {
    return FakeServer.listen(opts, (server, port) => new VertexFake(server, port, opts));
  }

  // -------------------------------------------------------------------------------------------

  protected onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { path: rawPath, query } = splitUrl(req.url);
    let path: string;
    try {
      // The SDK URL-encodes the model id: multimodalembedding%40001 -> multimodalembedding@001.
      path = decodeURIComponent(rawPath);
    } catch {
      path = rawPath;
    }
    readJsonBody(req, (body, jsonError) => this.dispatch(res, path, { method: req.method ?? 'GET', path, rawPath, query, headers: req.headers, body, jsonError }));
  }

  protected toRecorded({ method, path, rawPath, query, headers, body }: VertexRequest): VertexRecordedRequest {
    return { method, path, rawPath, query, headers, body };
  }

  protected requestId(seq: number): string {
    return `vertexfake-${seq}`;
  }

  protected errorResponse(e: unknown): OutgoingResponse {
    return e instanceof ApiError ? jsonResponse(e.status, googleErrorBody(e.status, e.message)) : jsonResponse(500, googleErrorBody(500, `VertexFake internal error: ${(e as Error).message}`));
  }

  protected defaultInjectedBody(status: number): unknown {
    return status >= 400 ? googleErrorBody(status) : {};
  }

  protected answer(request: VertexRequest, seq: number): OutgoingResponse {
    const match = ROUTE.exec(request.path);
    if (request.method !== 'POST' || !match) {
      throw new ApiError(404, `The requested URL ${request.method} ${request.path} was not found on this server (VertexFake).`);
    }
    const [, , , , model, verb] = match;
    if (request.jsonError || !isObject(request.body)) throw new ApiError(400, 'Invalid JSON payload received.');
    switch (verb) {
      case 'predict':
        return predict(model, request.body);
      case 'generateContent':
        return generateContent(model, request.body, this.requestId(seq));
      default:
        throw new ApiError(404, `Method :${verb} is not served by VertexFake.`);
    }
  }
}

if (require.main === module) runFakeFromCli('vertex-fake', 'VERTEX_FAKE_URL', (opts) => VertexFake.start(opts));
