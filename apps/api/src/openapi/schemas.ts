import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { ALL_QUEUES, BatchStatus, JobStatus } from '@lib/contracts';

/**
 * The OpenAPI component schemas, written by hand: libs/contracts stays free of Nest (so no
 * @ApiProperty there), and the spec's schemas carry details (anyOf with null, titles,
 * examples) that decorators would not reproduce. The first six mirror the spec's OpenAPI block
 * (spec/mixpeek-raw-inference.md) and the contracts types; test/e2e/openapi.e2e-spec.ts
 * compares them with the spec field by field. The rest document the gateway's own endpoints.
 */

const ref = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` }) as SchemaObject;
const nullable = (schema: SchemaObject): SchemaObject => ({ anyOf: [schema, { type: 'null' } as SchemaObject] });
const OBJECT: SchemaObject = { type: 'object', additionalProperties: true };

const RawInferenceRequest: SchemaObject = {
  type: 'object',
  title: 'RawInferenceRequest',
  description:
    'Request for raw inference. Give exactly one of `provider` + `model`, `inference_name` or `feature_uri`; ' +
    '`inputs` is required. The task (chat, vision, embedding, transcription, multimodal embedding) is chosen from the inputs and model.',
  required: ['inputs'],
  properties: {
    provider: {
      ...nullable({ type: 'string' }),
      title: 'Provider',
      description: 'Provider name: openai, google, anthropic (required if inference_name not set)',
      examples: ['openai', 'google', 'anthropic'],
    },
    model: {
      ...nullable({ type: 'string' }),
      title: 'Model',
      description: 'Model identifier specific to the provider (required if inference_name not set)',
      examples: ['gpt-4o-mini', 'gemini-1.5-flash', 'claude-3-5-sonnet', 'text-embedding-3-large', 'whisper-1'],
    },
    inference_name: {
      ...nullable({ type: 'string' }),
      title: 'Inference Name',
      description: 'Custom plugin inference name (alternative to provider+model)',
      examples: ['my_text_embedder_1_0_0', 'custom_reranker_2_0_0'],
    },
    feature_uri: {
      ...nullable({ type: 'string' }),
      title: 'Feature Uri',
      description:
        'Feature URI to resolve to inference_name (alternative to inference_name). Format: mixpeek://{extractor}@{version}/{vector_index_name}',
      examples: ['mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1', 'mixpeek://my_custom_embedder@1.0.0/embedding'],
    },
    inputs: {
      ...OBJECT,
      title: 'Inputs',
      description:
        'Model-specific inputs. Chat: {prompts: [str], system?: str}, Embeddings: {text: str} or {texts: [str]}, ' +
        'Transcription: {audio_url: str} or {audio_base64: str}, Vision: {prompts: [str], image_url: str}, ' +
        'Multimodal embedding: {text | image_url | image_base64 | video_url | video_base64}',
      examples: [{ prompts: ['What is the capital of France?'] }, { text: 'machine learning' }, { audio_url: 'https://example.com/audio.mp3' }],
    },
    parameters: {
      ...nullable(OBJECT),
      title: 'Parameters',
      description: 'Optional parameters for inference. Common: temperature (float), max_tokens (int), schema (dict for structured output)',
      examples: [{ max_tokens: 500, temperature: 0.7 }],
    },
    enable_semantic_cache: {
      type: 'boolean',
      title: 'Enable Semantic Cache',
      description: 'Enable semantic caching (vCache) for LLM chat operations. Served from cache only when the gateway has a semantic cache embedder (SEMANTIC_CACHE_EMBEDDER); otherwise a plain miss.',
      default: false,
    },
    cache_delta: {
      ...nullable({ type: 'number', minimum: 0, maximum: 1 }),
      title: 'Cache Delta',
      description: 'Maximum error rate for semantic cache (0.0-1.0). Lower values are more conservative.',
    },
  },
};

const RawInferenceResponse: SchemaObject = {
  type: 'object',
  title: 'RawInferenceResponse',
  description: 'Response from raw inference: the result (`data`, shaped by task) and metadata about the request.',
  required: ['data', 'provider', 'model', 'latency_ms'],
  properties: {
    data: {
      title: 'Data',
      description:
        'Inference results (structure varies by modality). Chat/vision: {text, finish_reason, parsed?}; embedding: {embedding, dimensions}; ' +
        'batch embedding: {embeddings, dimensions}; video: {segments: [{start_offset_sec, end_offset_sec, embedding}], dimensions}; ' +
        'transcription: {text, language?, duration?, segments: [{start, end, text}]}',
    },
    provider: { type: 'string', title: 'Provider', description: 'Provider that was used' },
    model: { type: 'string', title: 'Model', description: 'Model that was used' },
    tokens_used: {
      ...nullable({ type: 'object', additionalProperties: { type: 'integer' } }),
      title: 'Tokens Used',
      description: 'Token usage statistics (if available)',
      examples: [{ completion: 120, prompt: 15, total: 135 }],
    },
    latency_ms: { type: 'number', title: 'Latency Ms', description: 'Total inference latency in milliseconds, from the API receiving the request to the result' },
    cached: { type: 'boolean', title: 'Cached', description: 'Whether the response was served from semantic cache (vCache)', default: false },
  },
};

const ErrorDetail: SchemaObject = {
  type: 'object',
  title: 'ErrorDetail',
  description: 'Error detail model.',
  required: ['message', 'type'],
  properties: {
    message: { type: 'string', title: 'Message', description: 'Human-readable error message' },
    type: {
      type: 'string',
      title: 'Type',
      description:
        'Stable error type identifier (machine-readable): BadRequestError, UnauthorizedError, ForbiddenError, NotFoundError, ' +
        'TooManyRequestsError, InternalServerError, InferenceServiceUnavailableError, TimeoutError',
    },
    code: {
      ...nullable({ type: 'string' }),
      title: 'Code',
      description: 'Fine-grained error code for programmatic handling (e.g. provider_not_configured, media_too_large, job_not_found)',
    },
    details: {
      ...nullable(OBJECT),
      title: 'Details',
      description: 'Optional structured details to help debugging (validation errors, IDs, etc.)',
    },
  },
};

const ErrorResponse: SchemaObject = {
  type: 'object',
  title: 'ErrorResponse',
  description: 'Error response model: every error but 422.',
  required: ['status', 'error'],
  properties: {
    success: { type: 'boolean', title: 'Success', description: 'Always false for error responses', default: false },
    status: { type: 'integer', title: 'Status', description: 'HTTP status code for this error' },
    error: { ...ref('ErrorDetail'), description: 'Error details payload' },
  },
  examples: [{ error: { message: 'Job openai-0 not found', type: 'NotFoundError', code: 'job_not_found' }, status: 404, success: false }],
};

const ValidationError: SchemaObject = {
  type: 'object',
  title: 'ValidationError',
  required: ['loc', 'msg', 'type'],
  properties: {
    loc: { type: 'array', title: 'Location', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
    msg: { type: 'string', title: 'Message' },
    type: { type: 'string', title: 'Error Type' },
  },
};

const HTTPValidationError: SchemaObject = {
  type: 'object',
  title: 'HTTPValidationError',
  properties: {
    detail: { type: 'array', title: 'Detail', items: ref('ValidationError') },
  },
};

const JOB_STATUSES = Object.values(JobStatus);
const jobId: SchemaObject = {
  type: 'string',
  description: `Job id; it starts with its queue's name (${ALL_QUEUES.join(', ')}), e.g. openai-5b7c...`,
};
const timestamp = (description: string): SchemaObject => ({ type: 'string', format: 'date-time', description });

const JobReference: SchemaObject = {
  type: 'object',
  title: 'JobReference',
  description: 'The 202 answer of an accepted request: `Prefer: respond-async`, or a job still running when the synchronous wait ran out.',
  required: ['job_id', 'status', 'status_url'],
  properties: {
    job_id: jobId,
    status: { type: 'string', enum: [JobStatus.Pending, JobStatus.InProgress] },
    status_url: { type: 'string', description: 'Where to poll the job (also in the Location header)' },
  },
};

const JobView: SchemaObject = {
  type: 'object',
  title: 'JobView',
  description: 'A job in the API\'s terms. `result` when COMPLETED, `error` when FAILED or CANCELED.',
  required: ['job_id', 'status', 'progress', 'attempts', 'created_at'],
  properties: {
    job_id: jobId,
    status: { type: 'string', enum: JOB_STATUSES },
    progress: { anyOf: [{ type: 'number' }, OBJECT], description: 'Progress reported by the worker (0 until it reports any)' },
    result: ref('RawInferenceResponse'),
    error: ref('ErrorDetail'),
    attempts: { type: 'integer', description: 'Provider attempts made so far' },
    created_at: timestamp('When the job was accepted'),
    started_at: timestamp('When a worker first started it'),
    finished_at: timestamp('When it completed, failed or was canceled'),
  },
};

const HealthStatus: SchemaObject = {
  type: 'object',
  title: 'HealthStatus',
  required: ['status', 'redis'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    redis: { type: 'string', enum: ['up', 'down'] },
  },
};

const BATCH_STATUSES = Object.values(BatchStatus);

const BatchRequestLine: SchemaObject = {
  type: 'object',
  title: 'BatchRequestLine',
  description: 'One request of a batch: a RawInferenceRequest plus the `custom_id` its result line carries.',
  required: ['custom_id', 'inputs'],
  allOf: [ref('RawInferenceRequest')],
  properties: { custom_id: { type: 'string', minLength: 1, maxLength: 512, description: 'Echoed on the result line' } },
};

const BatchRequest: SchemaObject = {
  type: 'object',
  title: 'BatchRequest',
  required: ['requests'],
  properties: {
    requests: { type: 'array', items: ref('BatchRequestLine') },
    callback_url: { type: 'string', description: 'POSTed the final batch once it ends, with X-Signature: sha256=<HMAC-SHA256 of the body with BATCH_CALLBACK_SECRET>' },
    metadata: { ...OBJECT, description: 'Kept with the batch and shown with it' },
  },
};

const BatchView: SchemaObject = {
  type: 'object',
  title: 'BatchView',
  required: ['batch_id', 'object', 'status', 'request_counts', 'progress', 'results_url', 'created_at'],
  properties: {
    batch_id: { type: 'string', description: 'batch_ followed by 24 hex digits' },
    object: { type: 'string', enum: ['batch'] },
    status: { type: 'string', enum: BATCH_STATUSES },
    request_counts: {
      type: 'object',
      required: ['total', 'completed', 'failed'],
      properties: { total: { type: 'integer' }, completed: { type: 'integer' }, failed: { type: 'integer', description: 'Lines that ended with an error (invalid, failed, canceled)' } },
    },
    progress: { type: 'number', description: 'Lines with an outcome, in percent' },
    metadata: nullable(OBJECT),
    callback_url: nullable({ type: 'string' }),
    results_url: { type: 'string' },
    error: ref('ErrorDetail'),
    created_at: timestamp('When the upload started'),
    in_progress_at: timestamp('When the upload ended'),
    cancelling_at: timestamp('When a cancel was asked for'),
    finished_at: timestamp('When it ended'),
    expires_at: timestamp('When its results stop being downloadable'),
  },
};

const BatchResultLine: SchemaObject = {
  type: 'object',
  title: 'BatchResultLine',
  required: ['custom_id', 'index'],
  properties: {
    custom_id: nullable({ type: 'string' }),
    index: { type: 'integer', description: '0-based line number in the upload' },
    response: ref('RawInferenceResponse'),
    error: ref('ErrorDetail'),
  },
};

/** Every component schema of /openapi.json, by name. */
export const COMPONENT_SCHEMAS: Record<string, SchemaObject> = {
  RawInferenceRequest,
  RawInferenceResponse,
  ErrorResponse,
  ErrorDetail,
  HTTPValidationError,
  ValidationError,
  JobReference,
  JobView,
  HealthStatus,
  BatchRequestLine,
  BatchRequest,
  BatchView,
  BatchResultLine,
};
