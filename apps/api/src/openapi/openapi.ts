import { INestApplication } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AdminKeyGuard } from '../common/admin-key.guard';
import { IS_PUBLIC } from '../common/public.decorator';
import { COMPONENT_SCHEMAS } from './schemas';

type Operation = OpenAPIObject['paths'][string]['get'] & object;
type Responses = Operation['responses'];

export const OPENAPI_JSON_PATH = '/openapi.json';
export const OPENAPI_DOCS_PATH = '/docs';

/** The spec's OpenAPI version and API version (spec/mixpeek-raw-inference.md). */
const OPENAPI_VERSION = '3.1.0';
const API_VERSION = '0.82';

const json = (schema: string, description: string): Responses[string] => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});
const error = (description: string): Responses[string] => json('ErrorResponse', description);
const object = (description: string): Responses[string] => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });

/**
 * What the routes' decorators cannot say (the DTOs live in libs/contracts, which does not use
 * @nestjs/swagger): the spec's schemas, status codes and operation id for each known operation,
 * keyed "<method> <path>". A key that matches no route stops start-up, so this table cannot
 * drift from the controllers unnoticed.
 */
const OPERATIONS: Record<string, Partial<Operation>> = {
  'post /v1/inference': {
    tags: ['Inference'],
    summary: 'Execute Raw Inference',
    description:
      'Validates the request and queues it on its provider\'s queue. Answers 200 with the result when it arrives within ' +
      'SYNC_TIMEOUT_MS (or `Prefer: wait=N`), else 202 with a job reference to poll; `Prefer: respond-async` answers 202 at once.',
    operationId: 'execute_raw_inference_v1_inference_post',
    parameters: [
      {
        name: 'Prefer',
        in: 'header',
        required: false,
        description: '`respond-async` answers 202 at once; `wait=N` waits at most N seconds (never longer than SYNC_TIMEOUT_MS)',
        schema: { type: 'string' },
        examples: { async: { value: 'respond-async' }, wait: { value: 'wait=5' } },
      },
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'Within IDEMPOTENCY_TTL_SECONDS the same key (per API key) with the same body answers with the same job, marked ' +
          '`Idempotent-Replayed: true`, and never calls the provider twice; the same key with another body is a 422',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      },
    ],
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/RawInferenceRequest' } } } },
    responses: {
      '200': json('RawInferenceResponse', 'Successful Response'),
      '202': json('JobReference', 'Accepted: the job is queued or still running; poll status_url (also in Location)'),
      '400': error('Bad Request'),
      '401': error('Unauthorized'),
      '403': error('Forbidden'),
      '404': error('Not Found'),
      '422': json('HTTPValidationError', 'Validation Error'),
      '429': error('Too Many Requests: the API key is over API_RATE_LIMIT_RPM (see Retry-After and X-RateLimit-*)'),
      '500': error('Internal Server Error'),
      '503': error('Service Unavailable: the provider or the queue stayed unavailable, or the queue holds QUEUE_MAX_BACKLOG jobs (see Retry-After)'),
      '504': error('Timeout: the provider kept timing out'),
    },
  },
  'get /v1/inference/jobs/{id}': {
    tags: ['Jobs'],
    summary: 'Job status',
    description: 'The job\'s status, progress and attempts; its result when COMPLETED, its error when FAILED or CANCELED.',
    operationId: 'get_job_v1_inference_jobs__id__get',
    responses: {
      '200': json('JobView', 'The job'),
      '401': error('Unauthorized'),
      '404': error('Not Found: no such job, or past JOB_RETENTION_SECONDS'),
    },
  },
  'delete /v1/inference/jobs/{id}': {
    tags: ['Jobs'],
    summary: 'Cancel a job',
    description: 'Removes a waiting job, aborts a running one. A job that had already finished is returned unchanged.',
    operationId: 'cancel_job_v1_inference_jobs__id__delete',
    responses: {
      '200': json('JobView', 'Canceled (or already finished)'),
      '202': json('JobView', 'The worker has not stopped the job yet; poll it'),
      '401': error('Unauthorized'),
      '404': error('Not Found'),
    },
  },
  'post /v1/inference/batches': {
    tags: ['Batches'],
    summary: 'Submit a batch',
    description:
      'Many inference requests at once, each with a `custom_id`: a JSON body `{"requests": [...], "callback_url"?, "metadata"?}`, or an ' +
      'NDJSON body (`Content-Type: application/x-ndjson` or `application/jsonl`, one request per line, read as it arrives) with ' +
      '`callback_url` and `metadata` in the query string. Each line is validated as POST /v1/inference validates a body: a bad line ' +
      'gets its own error in the results, the batch goes on. Answers 202 once every line is read.',
    operationId: 'submit_batch_v1_inference_batches_post',
    parameters: [
      { name: 'callback_url', in: 'query', required: false, description: 'NDJSON uploads: URL POSTed the final batch once it ends (signed, see X-Signature)', schema: { type: 'string' } },
      { name: 'metadata', in: 'query', required: false, description: 'NDJSON uploads: a JSON object kept with the batch', schema: { type: 'string' } },
    ],
    requestBody: {
      required: true,
      content: {
        'application/json': { schema: { $ref: '#/components/schemas/BatchRequest' } },
        'application/x-ndjson': { schema: { $ref: '#/components/schemas/BatchRequestLine' } },
      },
    },
    responses: {
      '202': json('BatchView', 'Accepted: every line is read; poll the batch (also in Location)'),
      '400': error('Bad Request: no lines (batch_empty), more than BATCH_MAX_LINES (batch_too_large), a bad callback_url or metadata'),
      '401': error('Unauthorized'),
      '422': json('HTTPValidationError', 'Validation Error: the JSON body has no `requests` list'),
      '429': error('Too Many Requests'),
    },
  },
  'get /v1/inference/batches/{id}': {
    tags: ['Batches'],
    summary: 'Batch status',
    description: 'Status, request counts, progress and timestamps. EXPIRED once its results are past BATCH_RETENTION_SECONDS.',
    operationId: 'get_batch_v1_inference_batches__id__get',
    responses: { '200': json('BatchView', 'The batch'), '401': error('Unauthorized'), '404': error('Not Found') },
  },
  'get /v1/inference/batches/{id}/results': {
    tags: ['Batches'],
    summary: 'Batch results',
    description:
      'NDJSON, one line per request in input order: `custom_id`, `index` and either `response` or `error`. While the batch runs, the lines ' +
      'finished so far (in input order, skipping unfinished ones).',
    operationId: 'get_batch_results_v1_inference_batches__id__results_get',
    responses: {
      '200': { description: 'The result lines', content: { 'application/x-ndjson': { schema: { $ref: '#/components/schemas/BatchResultLine' } } } },
      '401': error('Unauthorized'),
      '404': error('Not Found, or the results expired (batch_expired)'),
    },
  },
  'delete /v1/inference/batches/{id}': {
    tags: ['Batches'],
    summary: 'Cancel a batch',
    description: 'Lines not yet started end with a `batch_canceled` error; running lines finish. A batch that had already ended is returned unchanged.',
    operationId: 'cancel_batch_v1_inference_batches__id__delete',
    responses: {
      '200': json('BatchView', 'Canceled (or already ended)'),
      '202': json('BatchView', 'CANCELING: running lines are finishing; poll the batch'),
      '401': error('Unauthorized'),
      '404': error('Not Found'),
    },
  },
  'get /v1/inference/plugins': {
    tags: ['Inference'],
    summary: 'Loaded plugins',
    description: 'Every loaded plugin (and the builtin extractors) with its inference name, feature URIs, dimensions and input schema.',
    operationId: 'list_plugins_v1_inference_plugins_get',
    responses: { '200': object('The plugins'), '401': error('Unauthorized') },
  },
  'get /v1/workers': {
    tags: ['Operations'],
    summary: 'Live workers (admin key)',
    description: 'Worker processes with a live heartbeat: host, pid, queues, concurrency, jobs in flight.',
    operationId: 'list_workers_v1_workers_get',
    responses: { '200': object('The workers'), '401': error('Unauthorized'), '403': error('Not an admin key, or ADMIN_API_KEYS is empty') },
  },
  'get /ready': {
    tags: ['Health'],
    summary: 'Readiness',
    description: 'Redis answers and every queue whose provider is configured has a live worker. Needs no API key.',
    operationId: 'ready_ready_get',
    responses: { '200': object('Ready'), '503': object('Not ready: names the queues without a worker') },
  },
  'get /metrics': {
    tags: ['Operations'],
    summary: 'Prometheus metrics',
    description: 'The API process\'s metrics in the Prometheus text format (API key unless METRICS_PUBLIC=true).',
    operationId: 'metrics_metrics_get',
    responses: { '200': { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
  'get /health': {
    tags: ['Health'],
    summary: 'Health',
    description: 'Whether Redis answers. Needs no API key.',
    operationId: 'health_health_get',
    responses: {
      '200': json('HealthStatus', 'Redis answers'),
      '503': json('HealthStatus', 'Redis does not answer'),
    },
  },
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

/**
 * The OpenAPI document of the running app: routes and parameters from the controllers
 * (SwaggerModule), schemas and responses from schemas.ts and OPERATIONS above, and the
 * security of the routes that take no API key (securityByOperationId).
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const base = new DocumentBuilder()
    .setOpenAPIVersion(OPENAPI_VERSION)
    .setTitle('Inference gateway')
    .setDescription(
      'A self-hosted, queue-backed implementation of the Mixpeek raw inference API (POST /v1/inference). ' +
        'Send `Authorization: Bearer <key>` with a key from API_KEYS (when API_KEYS is empty the API needs no key and binds to loopback only).',
    )
    .setVersion(API_VERSION)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A key from API_KEYS' }, 'bearer')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A key from ADMIN_API_KEYS (operator endpoints)' }, 'admin')
    .addSecurityRequirements('bearer')
    .build();
  const document = SwaggerModule.createDocument(app, base);
  const security = securityByOperationId(app);
  const applied = new Set<string>();

  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const own = op.operationId ? security.get(op.operationId) : undefined;
      if (own) op.security = own;
      const key = `${method} ${path}`;
      const override = OPERATIONS[key];
      if (!override) continue;
      applied.add(key);
      // The scanned responses only know the handlers' return types; ours replace them.
      const parameters = [...(op.parameters ?? []), ...(override.parameters ?? [])];
      item[method] = { ...op, ...override, parameters, responses: override.responses ?? op.responses };
    }
  }
  const missing = Object.keys(OPERATIONS).filter((key) => !applied.has(key));
  if (missing.length > 0) {
    throw new Error(`OpenAPI: no route for ${missing.join(', ')}; update OPERATIONS in apps/api/src/openapi/openapi.ts`);
  }
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...COMPONENT_SCHEMAS } };
  pruneUnreferencedSchemas(document);
  return document;
}

/** Serves the document at /openapi.json and Swagger UI at /docs, both without an API key. */
export function setupOpenApi(app: INestApplication): void {
  const document = buildOpenApiDocument(app);
  SwaggerModule.setup(OPENAPI_DOCS_PATH, app, document, {
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'Inference gateway API',
  });
}

type Security = NonNullable<Operation['security']>;

/**
 * Security of the operations that do not take an API key, by operation id (SwaggerModule's
 * default `<Controller>_<method>`), read from the controllers' metadata as the guards read it:
 * @Public() alone needs no key; @Public() with AdminKeyGuard needs an admin key. A @Public()
 * route with some other guard of its own keeps the document's default.
 */
function securityByOperationId(app: INestApplication): Map<string, Security> {
  const found = new Map<string, Security>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const type = wrapper.metatype as (new (...args: never[]) => object) | null;
      if (!type?.prototype) continue;
      for (const name of Object.getOwnPropertyNames(type.prototype)) {
        const handler = (type.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
        const meta = (key: string): unknown => Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, type);
        if (meta(IS_PUBLIC) !== true) continue;
        const guards = [...((Reflect.getMetadata(GUARDS_METADATA, type) as unknown[]) ?? []), ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? [])];
        if (guards.length === 0) found.set(`${type.name}_${name}`, []);
        else if (guards.includes(AdminKeyGuard)) found.set(`${type.name}_${name}`, [{ admin: [] }]);
      }
    }
  }
  return found;
}

/** Drops the empty schemas SwaggerModule made of undecorated DTO classes once nothing points at them. */
function pruneUnreferencedSchemas(document: OpenAPIObject): void {
  const schemas = document.components?.schemas ?? {};
  for (const name of Object.keys(schemas)) {
    if (name in COMPONENT_SCHEMAS) continue;
    const { [name]: _self, ...others } = schemas;
    const text = JSON.stringify({ paths: document.paths, others });
    if (!text.includes(`"#/components/schemas/${name}"`)) delete schemas[name];
  }
}
