import { ErrorType, GatewayError, TokensUsed } from '@lib/contracts';

export interface E5ClientOptions {
  /** E5_BASE_URL, without a trailing slash. */
  baseUrl: string;
  /** `tei`: POST {base}/embed; `openai`: POST {base}/embeddings. */
  api: 'tei' | 'openai';
  /** Sent as `model` to OpenAI-compatible servers. */
  model: string;
  /** Texts per server call (E5_MAX_BATCH). */
  maxBatch: number;
  apiKey?: string;
  /** One server call's budget (PROVIDER_TIMEOUT_MS). */
  timeoutMs: number;
  /** Named in error messages, e.g. text_extractor@v1. */
  label: string;
}

export interface E5Embeddings {
  vectors: number[][];
  tokensUsed?: TokensUsed;
}

/**
 * An error shaped like an SDK's (`status`, `headers`, `code`, `name`), so the worker's one
 * error classifier decides retryable vs permanent for the E5 server as for any provider.
 */
export class E5ServerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly headers?: Headers,
    readonly code?: string,
    name = 'E5ServerError',
  ) {
    super(message);
    this.name = name;
  }
}

/**
 * A client of the text-embedding server behind the builtin E5 extractor: Hugging Face
 * text-embeddings-inference (`/embed`) or any OpenAI-compatible `/embeddings`. Texts go in
 * chunks of `maxBatch`, one call after another, in order.
 */
export class E5Client {
  private readonly origin: string;

  constructor(private readonly options: E5ClientOptions) {
    this.origin = new URL(options.baseUrl).origin;
  }

  async embed(texts: string[], signal: AbortSignal): Promise<E5Embeddings> {
    const vectors: number[][] = [];
    let prompt = 0;
    let reported = false;
    for (let start = 0; start < texts.length; start += this.options.maxBatch) {
      const batch = texts.slice(start, start + this.options.maxBatch);
      const got = this.options.api === 'tei' ? await this.tei(batch, signal) : await this.openai(batch, signal);
      if (got.vectors.length !== batch.length) {
        throw this.badAnswer(`${batch.length} vectors (it returned ${got.vectors.length})`);
      }
      vectors.push(...got.vectors);
      if (got.promptTokens !== undefined) {
        prompt += got.promptTokens;
        reported = true;
      }
    }
    return { vectors, tokensUsed: reported ? { prompt, completion: 0, total: prompt } : undefined };
  }

  private async tei(batch: string[], signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens?: number }> {
    // normalize: the server's own L2 normalisation (the gateway normalises again regardless);
    // truncate: texts over the model's 512 tokens are cut rather than refused.
    const body = await this.post('/embed', { inputs: batch, normalize: true, truncate: true }, signal);
    if (!Array.isArray(body) || !body.every(isNumberArray)) throw this.badAnswer('an array of vectors');
    return { vectors: body };
  }

  private async openai(batch: string[], signal: AbortSignal): Promise<{ vectors: number[][]; promptTokens?: number }> {
    const body = (await this.post('/embeddings', { model: this.options.model, input: batch, encoding_format: 'float' }, signal)) as {
      data?: Array<{ index?: number; embedding?: unknown }>;
      usage?: { prompt_tokens?: number };
    };
    if (!body || !Array.isArray(body.data)) throw this.badAnswer('{"data": [...]}');
    const rows = [...body.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    const vectors = rows.map((row) => (typeof row.embedding === 'string' ? decodeFloat32(row.embedding) : row.embedding));
    if (!vectors.every(isNumberArray)) throw this.badAnswer('embeddings as arrays of numbers');
    const tokens = body.usage?.prompt_tokens;
    return { vectors: vectors as number[][], promptTokens: typeof tokens === 'number' ? tokens : undefined };
  }

  private async post(path: string, payload: unknown, signal: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let res: Response;
    try {
      res = await fetch(this.options.baseUrl + path, {
        method: 'POST',
        headers,
        body: JSON.stringify(payload),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]),
      });
    } catch (err) {
      throw this.transportError(err, signal);
    }
    const text = await res.text().catch((err: unknown) => {
      throw this.transportError(err, signal);
    });
    if (!res.ok) throw new E5ServerError(`${this.where()} answered HTTP ${res.status}: ${errorText(text)}`, res.status, res.headers);
    try {
      return JSON.parse(text);
    } catch {
      throw this.badAnswer('JSON');
    }
  }

  private transportError(err: unknown, signal: AbortSignal): Error {
    if (signal.aborted) return err as Error;
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError') return new E5ServerError(`${this.where()} timed out after ${this.options.timeoutMs} ms`, undefined, undefined, 'ETIMEDOUT', 'TimeoutError');
    const code = e?.cause?.code;
    return new E5ServerError(`${this.where()}: ${code ?? e?.cause?.message ?? e?.message ?? 'request failed'} (fetch failed)`, undefined, undefined, code ?? 'ECONNRESET');
  }

  /** A server that answers in the wrong shape is misconfigured: retrying will not help. */
  private badAnswer(expected: string): GatewayError {
    return new GatewayError(
      ErrorType.ServiceUnavailable,
      `${this.where()} did not answer with ${expected}; is E5_API (${this.options.api}) right for this server?`,
      'e5_server_invalid_answer',
    );
  }

  private where(): string {
    return `${this.options.label}: E5 server at ${this.origin}`;
  }
}

/** L2-normalised copy (a zero vector stays zero). */
export function l2Normalise(vector: number[]): number[] {
  let sum = 0;
  for (const v of vector) sum += v * v;
  if (sum === 0) return vector.slice();
  const inv = 1 / Math.sqrt(sum);
  return vector.map((v) => v * inv);
}

function isNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

function decodeFloat32(b64: string): number[] {
  const buf = Buffer.from(b64, 'base64');
  const out: number[] = [];
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

/** TEI: {"error","error_type"}; OpenAI-compatible: {"error":{"message"}}; else the text, cut short. */
function errorText(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    const nested = (body.error as { message?: unknown } | undefined)?.message;
    if (typeof nested === 'string') return nested;
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || 'no message';
}
