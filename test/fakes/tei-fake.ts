/**
 * A small fake of a text-embedding server (built on `node:http` only), speaking both protocols
 * the builtin E5 extractor uses, as Hugging Face text-embeddings-inference (TEI) does:
 *
 *   POST /embed           TEI: {"inputs": str | [str], "normalize"?: bool, "truncate"?: bool}
 *                         -> [[f32, ...], ...]; errors {"error", "error_type"} (413 for a batch
 *                         over max_client_batch_size, 422 for empty or too-long inputs)
 *   POST /v1/embeddings   OpenAI-compatible: {"model", "input", "encoding_format"?}
 *                         -> {"object": "list", "data": [{"index", "embedding"}], "usage"}
 *   GET  /info            TEI's model info (model_id, max_client_batch_size, ...)
 *
 * Vectors are deterministic per text (the OpenAI fake's generator), `dimensions` long (1024 like
 * multilingual-e5-large-instruct unless told otherwise) and unit length when normalised.
 *
 * Run directly (`node dist/test/fakes/tei-fake.js --port 8090`) it prints `E5_BASE_URL=<url>`.
 */
import type * as http from 'node:http';
import { FakeServer, type FakeServerOptions, type OutgoingResponse, readJsonBody, runFakeFromCli, splitUrl } from './fake-server';
import { fakeEmbedding } from './openai-fake';

export interface TeiFakeOptions extends FakeServerOptions {
  /** Length of every vector. Default 1024. */
  dimensions?: number;
  /** TEI's --max-client-batch-size: more inputs in one call is a 413. Default 32. */
  maxBatch?: number;
  /** Inputs longer than this many characters are a 422 unless `truncate` is true. Default 2000. */
  maxInputChars?: number;
  /** The model id the server reports. Default intfloat/multilingual-e5-large-instruct. */
  modelId?: string;
}

export interface TeiRecordedRequest {
  at: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

interface TeiRequest extends TeiRecordedRequest {
  invalidJson: boolean;
}

type Json = Record<string, unknown>;

/** Thrown by handlers: `protocol` decides the body shape of the error. */
class TeiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorType: string,
    readonly protocol: 'tei' | 'openai',
  ) {
    super(message);
  }
}

function json(status: number, body: unknown): OutgoingResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class TeiFake extends FakeServer<TeiRecordedRequest, TeiRequest> {
  readonly dimensions: number;
  readonly maxBatch: number;
  readonly modelId: string;
  /** `${baseUrl}/v1`, for E5_API=openai. */
  readonly openaiBaseUrl: string;
  private readonly maxInputChars: number;
  /** Every vector is multiplied by this (a server that does not normalise); reset() restores 1. */
  private scale = 1;

  private constructor(server: http.Server, port: number, opts: TeiFakeOptions) {
    super(server, port, opts, {
      name: 'TeiFake',
      baseUrl: `http://127.0.0.1:${port}`,
      requestIdHeader: 'x-request-id',
      jsonContentType: 'application/json',
    });
    this.dimensions = opts.dimensions ?? 1024;
    this.maxBatch = opts.maxBatch ?? 32;
    this.maxInputChars = opts.maxInputChars ?? 2000;
    this.modelId = opts.modelId ?? 'intfloat/multilingual-e5-large-instruct';
    this.openaiBaseUrl = `${this.baseUrl}/v1`;
  }

  static start(opts: TeiFakeOptions = {}): Promise<TeiFake> {
    return FakeServer.listen(opts, (server, port) => new TeiFake(server, port, opts));
  }

  /** The vector the fake gives `text` (before any scaling), for tests to compare with. */
  vectorOf(text: string): number[] {
    return Array.from(fakeEmbedding(this.modelId, text, this.dimensions));
  }

  /** Makes every answer `factor` times too long, like a server that does not normalise. */
  setScale(factor: number): void {
    this.scale = factor;
  }

  override reset(): void {
    super.reset();
    this.scale = 1;
  }

  protected onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { path } = splitUrl(req.url);
    const method = req.method ?? 'GET';
    readJsonBody(req, (body, invalidJson) => this.dispatch(res, path, { at: Date.now(), method, path, headers: req.headers, body, invalidJson }));
  }

  protected toRecorded({ at, method, path, headers, body }: TeiRequest): TeiRecordedRequest {
    return { at, method, path, headers, body };
  }

  protected requestId(seq: number): string {
    return `tei-${seq}`;
  }

  protected errorResponse(err: unknown): OutgoingResponse {
    if (err instanceof TeiError) {
      return err.protocol === 'tei'
        ? json(err.status, { error: err.message, error_type: err.errorType })
        : json(err.status, { error: { message: err.message, type: err.errorType, param: null, code: null } });
    }
    return json(500, { error: `TeiFake internal error: ${(err as Error).message}`, error_type: 'Backend' });
  }

  protected defaultInjectedBody(status: number): unknown {
    if (status === 429) return { error: 'Model is overloaded', error_type: 'Overloaded' };
    if (status >= 500) return { error: 'Injected backend error', error_type: 'Backend' };
    return { error: `Injected error (HTTP ${status})`, error_type: 'Validation' };
  }

  protected answer(request: TeiRequest): OutgoingResponse {
    const { method, path } = request;
    if (method === 'GET' && path === '/info') {
      return json(200, { model_id: this.modelId, model_type: { embedding: { pooling: 'mean' } }, max_client_batch_size: this.maxBatch, max_input_length: 512 });
    }
    if (method === 'GET' && path === '/health') return { status: 200, headers: {}, body: '' };
    if (method === 'POST' && path === '/embed') return this.embed(request);
    if (method === 'POST' && path === '/v1/embeddings') return this.openaiEmbeddings(request);
    throw new TeiError(404, `no route ${method} ${path}`, 'NotFound', path.startsWith('/v1/') ? 'openai' : 'tei');
  }

  private embed({ body, invalidJson }: TeiRequest): OutgoingResponse {
    if (invalidJson || !isObject(body)) throw new TeiError(422, 'Failed to deserialize the JSON body into the target type', 'Validation', 'tei');
    const inputs = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
    if (!Array.isArray(inputs) || !inputs.every((t) => typeof t === 'string')) {
      throw new TeiError(422, 'Failed to deserialize the JSON body into the target type: inputs: data did not match any variant', 'Validation', 'tei');
    }
    const texts = this.checkTexts(inputs as string[], body.truncate === true, 'tei');
    const factor = body.normalize === false ? 2.5 : 1;
    return json(200, texts.map((t) => this.vector(t, factor)));
  }

  private openaiEmbeddings({ body, invalidJson }: TeiRequest): OutgoingResponse {
    if (invalidJson || !isObject(body)) throw new TeiError(422, 'Failed to deserialize the JSON body', 'Validation', 'openai');
    const input = typeof body.input === 'string' ? [body.input] : body.input;
    if (!Array.isArray(input) || !input.every((t) => typeof t === 'string')) throw new TeiError(422, "'input' must be a string or a list of strings", 'Validation', 'openai');
    const texts = this.checkTexts(input as string[], true, 'openai');
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') throw new TeiError(422, "'encoding_format' must be float or base64", 'Validation', 'openai');
    const data = texts.map((t, index) => {
      const v = this.vector(t, 1);
      return { object: 'embedding', index, embedding: format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v };
    });
    const tokens = texts.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
    return json(200, { object: 'list', data, model: typeof body.model === 'string' ? body.model : this.modelId, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  private checkTexts(texts: string[], truncate: boolean, protocol: 'tei' | 'openai'): string[] {
    if (texts.length === 0) throw new TeiError(422, '`inputs` cannot be empty', 'Validation', protocol);
    if (texts.length > this.maxBatch) {
      throw new TeiError(413, `batch size ${texts.length} > maximum allowed batch size ${this.maxBatch}`, 'Validation', protocol);
    }
    const long = texts.find((t) => t.length > this.maxInputChars);
    if (long && !truncate) {
      throw new TeiError(422, `Input validation error: \`inputs\` must have less than ${this.maxInputChars} characters. Given: ${long.length}`, 'Validation', protocol);
    }
    return texts.map((t) => t.slice(0, this.maxInputChars));
  }

  private vector(text: string, factor: number): number[] {
    const scale = factor * this.scale;
    return Array.from(fakeEmbedding(this.modelId, text, this.dimensions), (x) => x * scale);
  }
}

if (require.main === module) runFakeFromCli('tei-fake', 'E5_BASE_URL', (opts) => TeiFake.start(opts));
