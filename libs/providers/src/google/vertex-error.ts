import { GatewayError } from '@lib/contracts';

/**
 * Vertex errors reach us in two shapes, and `classifyProviderError` reads neither well:
 * - over gRPC (production), a GoogleError whose numeric `code` is a gRPC status (8, 14, ...);
 * - over the HTTP fallback (`vertexBaseUrl`), a GaxiosError with the HTTP `status` and the raw
 *   JSON body as its message, plus the request `config` (which may carry a bearer token).
 * `toHttpLikeError` turns both into a {@link VertexError}: an HTTP-like `status`, the provider's
 * own message, the response headers, and nothing of the request.
 */
export class VertexError extends Error {
  override readonly name = 'VertexError';

  constructor(
    message: string,
    readonly status: number,
    /** The original code: a gRPC status number, or the HTTP status over the fallback. */
    readonly code?: number | string,
    /** Google's status name, e.g. RESOURCE_EXHAUSTED. */
    readonly reason?: string,
    /** Lower-case response headers; `retry-after-ms` is added from a google.rpc.RetryInfo detail. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/**
 * gRPC status -> the HTTP status Google's front end answers with (cloud.google.com/apis/design/errors).
 * CANCELLED (1) is left alone: it is our own cancel, and the worker reads its abort signal.
 */
const HTTP_BY_GRPC_CODE: Readonly<Record<number, number>> = {
  2: 500, // UNKNOWN
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 400, // FAILED_PRECONDITION
  10: 409, // ABORTED
  11: 400, // OUT_OF_RANGE
  12: 501, // UNIMPLEMENTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  15: 500, // DATA_LOSS
  16: 401, // UNAUTHENTICATED
};

const GRPC_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

interface VertexErrorLike {
  message?: unknown;
  status?: unknown;
  code?: unknown;
  /** grpc-js: the server's message without the "8 RESOURCE_EXHAUSTED: " prefix. */
  details?: unknown;
  statusDetails?: unknown;
  headers?: unknown;
  response?: { status?: unknown; headers?: unknown };
}

/** Google's JSON error body: `{ error: { code, message, status, details } }`. */
interface GoogleErrorBody {
  code?: number;
  message?: string;
  status?: string;
  details?: unknown[];
}

/** Any error from the Vertex client -> a {@link VertexError} when a status can be told; else unchanged. */
export function toHttpLikeError(err: unknown): unknown {
  if (typeof err !== 'object' || err === null || err instanceof GatewayError || err instanceof VertexError) return err;
  const e = err as VertexErrorLike;
  const status = httpStatusOf(e);
  if (status === undefined) return encodingError(e) ?? err;
  const body = errorBody(e.message);
  const grpcCode = typeof e.code === 'number' && e.code < 100 ? e.code : undefined;
  const message =
    nonEmpty(body?.message) ?? nonEmpty(e.details) ?? nonEmpty(e.message)?.replace(/^\d+ [A-Z_]+: /, '') ?? `HTTP ${status}`;
  const reason = body?.status ?? (grpcCode !== undefined ? GRPC_NAMES[grpcCode] : undefined);
  const headers = headersOf(e.response?.headers ?? e.headers);
  const delay = retryDelayMs(body?.details ?? e.statusDetails);
  if (delay !== undefined && !headers['retry-after'] && !headers['retry-after-ms']) headers['retry-after-ms'] = String(delay);
  return new VertexError(message, status, typeof e.code === 'number' || typeof e.code === 'string' ? e.code : undefined, reason, headers);
}

function httpStatusOf(e: VertexErrorLike): number | undefined {
  for (const s of [e.status, e.response?.status]) if (typeof s === 'number' && s >= 400 && s < 600) return s;
  if (typeof e.code !== 'number') return undefined;
  if (e.code >= 400 && e.code < 600) return e.code;
  return HTTP_BY_GRPC_CODE[e.code];
}

/**
 * The SDK encodes requests with protobufjs, which throws a TypeError naming the field when a
 * value cannot go into Vertex's message (e.g. a schema's `additionalProperties: false` in
 * `responseSchema`): that is the request not fitting the API, so a 400 saying which field.
 */
function encodingError(e: VertexErrorLike): VertexError | undefined {
  if (!(e instanceof TypeError) || !/^\.google\.cloud\.aiplatform\./.test(e.message)) return undefined;
  return new VertexError(`the request does not fit Vertex's API: ${e.message.replace(/^\.google\.cloud\.aiplatform\.v1\./, '')}`, 400);
}

function errorBody(message: unknown): GoogleErrorBody | undefined {
  if (typeof message !== 'string' || !/^\s*[[{]/.test(message)) return undefined;
  try {
    let json = JSON.parse(message) as unknown;
    if (Array.isArray(json)) json = json.find((x) => typeof x === 'object' && x !== null && 'error' in x);
    const error = (json as { error?: unknown } | undefined)?.error;
    return typeof error === 'object' && error !== null ? (error as GoogleErrorBody) : undefined;
  } catch {
    return undefined;
  }
}

function headersOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw || typeof raw !== 'object') return out;
  const entries = raw instanceof Headers ? [...raw.entries()] : Object.entries(raw as Record<string, unknown>);
  for (const [k, v] of entries) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** google.rpc.RetryInfo `retryDelay`: "7s" in JSON bodies, `{ seconds, nanos }` decoded from gRPC. */
function retryDelayMs(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const d of details) {
    const delay = (d as { retryDelay?: unknown } | null)?.retryDelay;
    if (typeof delay === 'string' && /^\d+(\.\d+)?s$/.test(delay)) return Math.round(parseFloat(delay) * 1000);
    if (typeof delay === 'object' && delay !== null) {
      const { seconds, nanos } = delay as { seconds?: unknown; nanos?: unknown };
      const ms = Number(seconds ?? 0) * 1000 + Number(nanos ?? 0) / 1e6;
      if (Number.isFinite(ms) && ms > 0) return Math.round(ms);
    }
  }
  return undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value : undefined;
}
