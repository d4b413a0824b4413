/**
 * A small, dependency-free fake of the Anthropic Messages API (built on `node:http` only).
 *
 * The real `@anthropic-ai/sdk` can talk to it; the SDK appends `/v1/messages` itself, so the
 * base URL has no `/v1`:
 *   const fake = await AnthropicFake.start();
 *   const client = new Anthropic({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0 });
 *
 * Endpoint: POST /v1/messages (non-streaming). Anything else -> 404 with an Anthropic error body.
 * Like the real API it insists on credentials (`x-api-key` or `Authorization: Bearer`), on the
 * `anthropic-version` header and on `max_tokens`.
 *
 * Run directly (`node dist/test/fakes/anthropic-fake.js --port 8090 --latency 20 --no-record`) it
 * prints `ANTHROPIC_FAKE_URL=<baseUrl>` and runs until SIGTERM/SIGINT.
 */
import type * as http from 'node:http';
import { type FakeInjectedResponse, FakeServer, type FakeServerOptions, type OutgoingResponse, readJsonBody, runFakeFromCli, splitUrl } from './fake-server';
import { sampleFromSchema } from './openai-fake';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/messages'. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON (the raw string if it was not valid JSON, undefined if empty). */
  body: unknown;
}

export interface InjectedResponse extends FakeInjectedResponse {
  /**
   * JSON-encoded before sending; a Buffer is sent raw. When omitted, an Anthropic error body fits
   * the status: 429 rate_limit_error, 529 overloaded_error, other 5xx api_error, 401
   * authentication_error, other 4xx invalid_request_error; `{}` below 400.
   */
  body?: unknown;
}

export type AnthropicFakeOptions = FakeServerOptions;

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error';

type Json = Record<string, unknown>;

const JSON_CT = 'application/json';
const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
/** Below this `max_tokens` the answer is cut off (`stop_reason: 'max_tokens'`). */
const CUT_OFF_BELOW = 5;

/** Thrown by the handler to produce an Anthropic-shaped error response. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: AnthropicErrorType = 'invalid_request_error',
  ) {
    super(message);
  }
}

export function anthropicErrorBody(type: AnthropicErrorType, message: string): Json {
  return { type: 'error', error: { type, message } };
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

// ---------------------------------------------------------------------------------------------
// POST /v1/messages

function checkHeaders(headers: http.IncomingHttpHeaders): void {
  const bearer = /^Bearer\s+\S+/i.test(headers.authorization ?? '');
  if (!headers['x-api-key'] && !bearer) {
    throw new ApiError(401, 'x-api-key header is required', 'authentication_error');
  }
  if (!headers['anthropic-version']) {
    throw new ApiError(400, 'anthropic-version: header is required');
  }
}

interface ContentInfo {
  texts: string[];
  images: number;
}

/** The text and image blocks of one message, validating each image as the real API does. */
function contentInfo(content: unknown, at: string): ContentInfo {
  if (typeof content === 'string') return { texts: [content], images: 0 };
  if (!Array.isArray(content)) throw new ApiError(400, `${at}.content: Input should be a valid list`);
  const info: ContentInfo = { texts: [], images: 0 };
  content.forEach((block, i) => {
    if (!isObject(block)) throw new ApiError(400, `${at}.content.${i}: Input should be an object`);
    if (block.type === 'text') {
      if (typeof block.text !== 'string') throw new ApiError(400, `${at}.content.${i}.text: Field required`);
      info.texts.push(block.text);
    } else if (block.type === 'image') {
      const source = block.source;
      if (!isObject(source) || source.type !== 'base64') {
        throw new ApiError(400, `${at}.content.${i}.image.source: only base64 sources are supported by the fake`);
      }
      if (typeof source.media_type !== 'string' || !IMAGE_MEDIA_TYPES.includes(source.media_type)) {
        throw new ApiError(400, `${at}.content.${i}.image.source.base64.media_type: Input should be ${IMAGE_MEDIA_TYPES.map((t) => `'${t}'`).join(', ')}`);
      }
      if (typeof source.data !== 'string' || source.data.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(source.data)) {
        throw new ApiError(400, `${at}.content.${i}.image.source.base64.data: expected non-empty base64 data`);
      }
      info.images++;
    }
  });
  return info;
}

function systemChars(system: unknown): number {
  if (typeof system === 'string') return system.length;
  if (!Array.isArray(system)) return 0;
  return system.reduce((n: number, b) => n + (isObject(b) && typeof b.text === 'string' ? b.text.length : 0), 0);
}

/** The tool a `tool_choice: {type: 'tool'}` forces, or undefined when none is forced. */
function forcedTool(body: Json): Json | undefined {
  const choice = body.tool_choice;
  if (!isObject(choice) || choice.type !== 'tool') return undefined;
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const tool = tools.find((t): t is Json => isObject(t) && t.name === choice.name);
  if (!tool) throw new ApiError(400, `tool_choice: Tool '${String(choice.name)}' not found in tools`);
  if (!isObject(tool.input_schema)) throw new ApiError(400, `tools.${tools.indexOf(tool)}.input_schema: Field required`);
  return tool;
}

function createMessage(body: Json, id: string): OutgoingResponse {
  if (typeof body.model !== 'string' || body.model.length === 0) throw new ApiError(400, 'model: Field required');
  const maxTokens = body.max_tokens;
  if (maxTokens === undefined) throw new ApiError(400, 'max_tokens: Field required');
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1) throw new ApiError(400, 'max_tokens: Input should be a positive integer');
  if (body.stream === true) throw new ApiError(400, 'stream: streaming is not supported by the Anthropic fake');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, 'messages: at least one message is required');

  let promptChars = systemChars(body.system);
  let lastUser: ContentInfo | undefined;
  messages.forEach((m, i) => {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      throw new ApiError(400, `messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
    const info = contentInfo(m.content, `messages.${i}`);
    promptChars += info.texts.join('').length;
    if (m.role === 'user') lastUser = info;
  });

  const cutOff = (maxTokens as number) < CUT_OFF_BELOW;
  const tool = forcedTool(body);
  let content: Json[];
  let outputChars: number;
  if (tool) {
    const input = sampleFromSchema(tool.input_schema);
    content = [{ type: 'tool_use', id: `toolu_${id}`, name: tool.name, input }];
    outputChars = JSON.stringify(input).length;
  } else {
    const images = lastUser && lastUser.images > 0 ? ` [images: ${lastUser.images}]` : '';
    let text = `echo: ${(lastUser?.texts ?? []).join('\n')}${images}`;
    if (cutOff) text = text.slice(0, (maxTokens as number) * 4);
    content = [{ type: 'text', text }];
    outputChars = text.length;
  }
  const outputTokens = Math.min(approxTokens(outputChars), maxTokens as number);
  return jsonResponse(200, {
    id: `msg_${id}`,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content,
    stop_reason: cutOff ? 'max_tokens' : tool ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: approxTokens(promptChars), output_tokens: outputTokens },
  });
}

// ---------------------------------------------------------------------------------------------
// the fake

interface AnthropicRequest extends RecordedRequest {
  invalidJson: boolean;
}

export class AnthropicFake extends FakeServer<RecordedRequest, AnthropicRequest, InjectedResponse> {
  private constructor(server: http.Server, port: number, opts: AnthropicFakeOptions) {
    super(server, port, opts, { name: 'AnthropicFake', baseUrl: `http://127.0.0.1:${port}`, requestIdHeader: 'request-id', jsonContentType: JSON_CT });
  }

  static start(opts: AnthropicFakeOptions = {}): Promise<AnthropicFake> {
    return FakeServer.listen(opts, (server, port) => new AnthropicFake(server, port, opts));
  }

  // -------------------------------------------------------------------------------------------

  protected onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { path } = splitUrl(req.url);
    readJsonBody(req, (body, invalidJson) => this.dispatch(res, path, { method: req.method ?? 'GET', path, headers: req.headers, body, invalidJson }));
  }

  protected toRecorded({ method, path, headers, body }: AnthropicRequest): RecordedRequest {
    return { method, path, headers, body };
  }

  protected requestId(seq: number): string {
    return `req_fake${seq}`;
  }

  protected errorResponse(e: unknown): OutgoingResponse {
    return e instanceof ApiError
      ? jsonResponse(e.status, anthropicErrorBody(e.type, e.message))
      : jsonResponse(500, anthropicErrorBody('api_error', `AnthropicFake internal error: ${(e as Error).message}`));
  }

  protected defaultInjectedBody(status: number): unknown {
    if (status === 429) return anthropicErrorBody('rate_limit_error', 'Number of requests has exceeded your rate limit');
    if (status === 529) return anthropicErrorBody('overloaded_error', 'Overloaded');
    if (status >= 500) return anthropicErrorBody('api_error', 'Internal server error');
    if (status === 401) return anthropicErrorBody('authentication_error', 'invalid x-api-key');
    if (status >= 400) return anthropicErrorBody('invalid_request_error', `Injected error (HTTP ${status})`);
    return {};
  }

  protected answer({ method, path, headers, body, invalidJson }: AnthropicRequest, seq: number): OutgoingResponse {
    if (method !== 'POST' || path !== '/v1/messages') throw new ApiError(404, `Not found: ${method} ${path}`, 'not_found_error');
    checkHeaders(headers);
    if (invalidJson || !isObject(body)) throw new ApiError(400, 'The request body is not valid JSON.');
    return createMessage(body, `fake${seq}`);
  }
}

if (require.main === module) runFakeFromCli('anthropic-fake', 'ANTHROPIC_FAKE_URL', (opts) => AnthropicFake.start(opts));
