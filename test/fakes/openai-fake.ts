/**
 * A small, dependency-free fake of the OpenAI HTTP API (built on `node:http` only).
 *
 * The real `openai` SDK (v6) can talk to it:
 *   const fake = await OpenAIFake.start();
 *   const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'x', maxRetries: 0 });
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/embeddings, POST /v1/audio/transcriptions,
 * GET /v1/models (and /v1/models/:id). Anything else -> 404 with an OpenAI error body.
 *
 * It is also used by the benchmark, so the per-request path is kept cheap: no logging, no timers
 * unless latency is configured, and file uploads are streamed through a hash rather than buffered.
 *
 * Run directly (`node dist/test/fakes/openai-fake.js --port 8089 --latency 20 --no-record`) it prints
 * `OPENAI_FAKE_URL=<baseUrl>` and runs until SIGTERM/SIGINT.
 */
import { createHash, type Hash } from 'node:crypto';
import type * as http from 'node:http';
import { endianness } from 'node:os';
import { type FakeInjectedResponse, FakeServer, type FakeServerOptions, type OutgoingResponse, readJsonBody, runFakeFromCli, splitUrl } from './fake-server';
import { ProviderRateLimit, type RateVerdict } from './provider-rate-limit';

export interface RecordedRequest {
  /** When the request arrived (epoch ms). */
  at: number;
  method: string;
  /** Path without the query string, e.g. '/v1/chat/completions'. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /**
   * Parsed JSON for JSON bodies (the raw string if it was not valid JSON, undefined if empty);
   * for multipart bodies a {@link MultipartBody}.
   */
  body: unknown;
}

export interface RecordedFile {
  field: string;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
}

export interface MultipartBody {
  fields: Record<string, string>;
  files: RecordedFile[];
}

export interface InjectedResponse extends FakeInjectedResponse {
  /**
   * JSON-encoded before sending. Exceptions: a Buffer is sent raw, and a string is sent raw when
   * `headers` sets a non-JSON content-type. When omitted, a default OpenAI error body is used for
   * status >= 400 (429 -> rate_limit_exceeded, 5xx -> server_error, other 4xx ->
   * invalid_request_error) and `{}` otherwise.
   */
  body?: unknown;
}

export type OpenAIFakeOptions = FakeServerOptions;

type Json = Record<string, unknown>;

const JSON_CT = 'application/json';
const LITTLE_ENDIAN = endianness() === 'LE';

/** Thrown by request handlers to produce an OpenAI-shaped error response. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = 'invalid_request_error',
  ) {
    super(message);
  }
}

function errorBody(message: string, type: string, param: string | null, code: string | null): Json {
  return { error: { message, type, param, code } };
}

function jsonResponse(status: number, body: unknown): OutgoingResponse {
  return { status, headers: { 'content-type': JSON_CT }, body: JSON.stringify(body) };
}

function apiErrorResponse(err: ApiError): OutgoingResponse {
  return jsonResponse(err.status, errorBody(err.message, err.type, err.param, err.code));
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requireJsonObject(body: unknown, jsonError: boolean): Json {
  if (jsonError || !isObject(body)) {
    throw new ApiError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
  return body;
}

function requireModel(body: Json): string {
  const model = body.model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new ApiError(400, 'you must provide a model parameter');
  }
  return model;
}

function approxTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

// ---------------------------------------------------------------------------------------------
// chat.completions

interface ContentInfo {
  text: string;
  images: number;
}

function contentInfo(content: unknown): ContentInfo {
  if (typeof content === 'string') return { text: content, images: 0 };
  if (!Array.isArray(content)) return { text: '', images: 0 };
  const texts: string[] = [];
  let images = 0;
  for (const part of content) {
    if (!isObject(part)) continue;
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    else if (part.type === 'image_url' || part.type === 'input_image' || part.type === 'image') images++;
  }
  return { text: texts.join('\n'), images };
}

/** Minimal value satisfying a JSON schema (enough for structured-output round trips). */
export function sampleFromSchema(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (!isObject(schema) || depth > 16) return null;
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(root, schema.$ref);
    return target === undefined ? null : sampleFromSchema(target, root, depth + 1);
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const variants = schema[key];
    if (Array.isArray(variants) && variants.length > 0) {
      // Prefer a non-null branch so e.g. `string | null` yields 'text'.
      const pick = variants.find((v) => !(isObject(v) && v.type === 'null')) ?? variants[0];
      if (key !== 'allOf' || variants.length === 1) return sampleFromSchema(pick, root, depth + 1);
      // allOf: merge object samples.
      const merged: Json = {};
      for (const v of variants) {
        const s = sampleFromSchema(v, root, depth + 1);
        if (isObject(s)) Object.assign(merged, s);
      }
      return merged;
    }
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? type[0];
  if (type === undefined) {
    if (isObject(schema.properties)) type = 'object';
    else if (schema.items !== undefined) type = 'array';
  }
  switch (type) {
    case 'object': {
      const out: Json = {};
      if (isObject(schema.properties)) {
        for (const [k, v] of Object.entries(schema.properties)) out[k] = sampleFromSchema(v, root, depth + 1);
      }
      return out;
    }
    case 'array': {
      const items = Array.isArray(schema.items) ? schema.items[0] : schema.items;
      return [sampleFromSchema(items ?? { type: 'string' }, root, depth + 1)];
    }
    case 'string':
      return 'text';
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return null;
  }
}

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let cur: unknown = root;
  for (const raw of ref.slice(1).split('/')) {
    if (raw === '') continue;
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

function chatCompletion(body: Json, id: string): OutgoingResponse {
  const model = requireModel(body);
  if (body.stream === true) {
    throw new ApiError(400, 'Streaming is not supported by the OpenAI fake.', 'stream');
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ApiError(400, "Invalid 'messages': expected a non-empty array of messages.", 'messages');
  }
  let promptChars = 0;
  let lastUser: ContentInfo | undefined;
  for (const m of messages) {
    if (!isObject(m)) {
      throw new ApiError(400, "Invalid 'messages': each message must be an object.", 'messages');
    }
    const info = contentInfo(m.content);
    promptChars += info.text.length;
    if (m.role === 'user') lastUser = info;
  }

  let content: string;
  const rf = body.response_format;
  if (isObject(rf) && rf.type === 'json_schema') {
    const js = rf.json_schema;
    const schema = isObject(js) ? js.schema : undefined;
    content = JSON.stringify(sampleFromSchema(schema ?? { type: 'object' }));
  } else {
    const text = lastUser?.text ?? '';
    content = 'echo: ' + text + (lastUser && lastUser.images > 0 ? ` [images: ${lastUser.images}]` : '');
  }

  const maxTokens =
    typeof body.max_completion_tokens === 'number'
      ? body.max_completion_tokens
      : typeof body.max_tokens === 'number'
        ? body.max_tokens
        : undefined;
  const finishReason = maxTokens !== undefined && maxTokens < 5 ? 'length' : 'stop';

  const n = typeof body.n === 'number' && body.n >= 1 ? Math.min(Math.floor(body.n), 128) : 1;
  const choices = [];
  for (let i = 0; i < n; i++) {
    choices.push({
      index: i,
      message: { role: 'assistant', content, refusal: null, annotations: [] },
      finish_reason: finishReason,
      logprobs: null,
    });
  }
  const promptTokens = approxTokens(promptChars);
  const completionTokens = approxTokens(content.length) * n;
  return jsonResponse(200, {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
    service_tier: 'default',
    system_fingerprint: null,
  });
}

// ---------------------------------------------------------------------------------------------
// embeddings

/** FNV-1a 32-bit over a string's UTF-16 code units. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Deterministic unit-length vector (values in [-1, 1]) seeded from model + input. */
export function fakeEmbedding(model: string, input: string, dims: number): Float32Array {
  let state = fnv1a(input, fnv1a(model + '\u0000')) || 1;
  const out = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    const v = r * 2 - 1;
    out[i] = v;
    norm += v * v;
  }
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < dims; i++) out[i] = out[i] * inv;
  }
  return out;
}

function float32ToBase64(v: Float32Array): string {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i], i * 4);
  return buf.toString('base64');
}

function embeddingInputs(input: unknown): string[] {
  const invalid = () => new ApiError(400, "'$.input' is invalid. Please check the API reference.", 'input');
  if (typeof input === 'string') {
    if (input.length === 0) throw invalid();
    return [input];
  }
  if (!Array.isArray(input) || input.length === 0) throw invalid();
  // A single array of token ids.
  if (input.every((x) => typeof x === 'number')) return [JSON.stringify(input)];
  return input.map((x) => {
    if (typeof x === 'string' && x.length > 0) return x;
    if (Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === 'number')) return JSON.stringify(x);
    throw invalid();
  });
}

function embeddings(body: Json): OutgoingResponse {
  const model = requireModel(body);
  const inputs = embeddingInputs(body.input);
  let dims: number;
  if (body.dimensions !== undefined && body.dimensions !== null) {
    const d = body.dimensions;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > 16384) {
      throw new ApiError(400, "Invalid 'dimensions': must be a positive integer.", 'dimensions');
    }
    dims = d;
  } else {
    dims = model.includes('large') ? 3072 : 1536;
  }
  const fmt = body.encoding_format ?? 'float';
  if (fmt !== 'float' && fmt !== 'base64') {
    throw new ApiError(400, "Invalid 'encoding_format': expected 'float' or 'base64'.", 'encoding_format');
  }
  let chars = 0;
  const data = inputs.map((text, index) => {
    chars += text.length;
    const vec = fakeEmbedding(model, text, dims);
    return { object: 'embedding', index, embedding: fmt === 'base64' ? float32ToBase64(vec) : Array.from(vec) };
  });
  const tokens = approxTokens(chars);
  return jsonResponse(200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

// ---------------------------------------------------------------------------------------------
// audio.transcriptions

/** The first bytes of each uploaded file, kept beside it (RecordedFile stays as recorded). */
const FILE_HEADS = new WeakMap<RecordedFile, Buffer>();
const HEAD_BYTES = 4096;
/**
 * Duration in s of a PCM WAV (from its byte rate) or of an MP3 whose first frame, right after
 * any ID3 tag, is a Xing/Info frame (ffmpeg writes one) counting the frames; else undefined.
 */
function audioDuration(head: Buffer | undefined, size: number): number | undefined {
  if (!head || head.length < 44) return undefined;
  if (head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WAVE') {
    const byteRate = head.readUInt32LE(28);
    return byteRate > 0 ? (size - 44) / byteRate : undefined;
  }
  const at = head.toString('latin1', 0, 3) === 'ID3' ? 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]) : 0;
  if (at + 64 > head.length || head[at] !== 0xff || (head[at + 1] & 0xe6) !== 0xe2) return undefined; // sync + layer III
  const version = (head[at + 1] >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  const rate = ({ 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] } as Record<number, number[]>)[version]?.[(head[at + 2] >> 2) & 3];
  const tag = Math.max(head.indexOf('Xing', at), head.indexOf('Info', at));
  if (!rate || tag < 0 || tag > at + 40 || !(head[tag + 7] & 1)) return undefined;
  return (head.readUInt32BE(tag + 8) * (version === 3 ? 1152 : 576)) / rate;
}

function tenSecondSegments(duration: number): Array<{ start: number; end: number; text: string }> {
  const out = [];
  for (let t = 0; t < duration; t += 10) out.push({ start: t, end: Math.min(t + 10, duration), text: `speech at ${t} s.` });
  return out;
}

function transcription(body: MultipartBody | undefined, parseError: string | undefined): OutgoingResponse {
  if (parseError !== undefined || body === undefined) {
    throw new ApiError(400, parseError ?? 'Expected a multipart/form-data request body.');
  }
  const { fields, files } = body;
  const file = files.find((f) => f.field === 'file');
  if (!file) throw new ApiError(400, "Missing required parameter: 'file'.", 'file');
  if (!fields.model) throw new ApiError(400, "Missing required parameter: 'model'.", 'model');
  if (fields.stream === 'true') {
    throw new ApiError(400, 'Streaming is not supported by the OpenAI fake.', 'stream');
  }
  const format = fields.response_format || 'json';
  // Real audio (a WAV or MP3 header): its duration, and a segment every 10 s; anything else: size / 16000.
  const heard = audioDuration(FILE_HEADS.get(file), file.size);
  const duration = heard ?? file.size / 16000;
  const parts = heard === undefined ? [] : tenSecondSegments(heard);
  const text = heard === undefined ? `transcript of ${file.filename} (${file.size} bytes)` : parts.map((p) => p.text).join(' ');
  switch (format) {
    case 'json':
      return jsonResponse(200, {
        text,
        usage: { type: 'tokens', input_tokens: 10, output_tokens: 5, total_tokens: 15 },
      });
    case 'verbose_json':
      return jsonResponse(200, {
        task: 'transcribe',
        language: fields.language || 'english',
        duration,
        text,
        segments: (parts.length > 0 ? parts : [{ start: 0, end: duration, text }]).map((p, id) => ({
          id,
          seek: 0,
          start: p.start,
          end: p.end,
          text: p.text,
          tokens: [],
          temperature: 0,
          avg_logprob: -0.1,
          compression_ratio: 1,
          no_speech_prob: 0,
        })),
        usage: { type: 'duration', seconds: Math.ceil(duration) },
      });
    case 'text':
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text };
    case 'srt':
      return {
        status: 200,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: `1\n00:00:00,000 --> ${timestamp(duration, ',')}\n${text}\n\n`,
      };
    case 'vtt':
      return {
        status: 200,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: `WEBVTT\n\n00:00:00.000 --> ${timestamp(duration, '.')}\n${text}\n\n`,
      };
    default:
      throw new ApiError(
        400,
        `Invalid 'response_format': expected one of json, text, srt, verbose_json, vtt.`,
        'response_format',
      );
  }
}

function timestamp(seconds: number, sep: string): string {
  const ms = Math.round(seconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(Math.floor(ms / 3600000))}:${p(Math.floor(ms / 60000) % 60)}:${p(Math.floor(ms / 1000) % 60)}${sep}${p(ms % 1000, 3)}`;
}

// ---------------------------------------------------------------------------------------------
// models

const MODEL_IDS = ['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small', 'text-embedding-3-large', 'whisper-1'];

function modelObject(id: string): Json {
  return { id, object: 'model', created: 1700000000, owned_by: 'openai-fake' };
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data (streaming)

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_PART_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 1024 * 1024;

function multipartBoundary(contentType: string): string | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function dispositionParam(disposition: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, 'i');
  const m = re.exec(disposition);
  if (!m) return undefined;
  if (m[1] !== undefined) {
    // undici/browsers percent-escape these three characters in quoted names.
    return m[1].replace(/\\(.)/g, '$1').replace(/%22/g, '"').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n');
  }
  return m[2].trim();
}

/**
 * Incremental multipart/form-data parser. Text fields are buffered (small); file parts are
 * streamed into a sha256 hash so arbitrarily large uploads use constant memory.
 */
class MultipartParser {
  readonly result: MultipartBody = { fields: {}, files: [] };
  private readonly delimiter: Buffer;
  // Start with a virtual CRLF so the first "--boundary" matches "\r\n--boundary".
  private buf: Buffer = CRLF;
  private state: 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'done' = 'preamble';
  private part:
    | { kind: 'field'; name: string; chunks: Buffer[]; size: number }
    | { kind: 'file'; file: RecordedFile; hash: Hash; head?: Buffer }
    | undefined;

  constructor(boundary: string) {
    this.delimiter = Buffer.from('\r\n--' + boundary);
  }

  write(chunk: Buffer): void {
    if (this.state === 'done') return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    // step() returns false once it needs more input or the closing boundary was seen.
    while (this.step()) {
      /* keep consuming */
    }
  }

  end(): void {
    if (this.state !== 'done') throw new Error('Malformed multipart body: missing closing boundary.');
  }

  /** Returns true if it consumed something and should be called again. */
  private step(): boolean {
    const buf = this.buf;
    switch (this.state) {
      case 'preamble': {
        const idx = buf.indexOf(this.delimiter);
        if (idx < 0) {
          this.keepTail();
          return false;
        }
        this.buf = buf.subarray(idx + this.delimiter.length);
        this.state = 'afterDelimiter';
        return true;
      }
      case 'afterDelimiter': {
        if (buf.length < 2) return false;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          this.state = 'done';
          this.buf = Buffer.alloc(0);
          return false;
        }
        // Skip optional transport padding, then CRLF.
        const eol = buf.indexOf(CRLF);
        if (eol < 0) {
          if (buf.length > 1024) throw new Error('Malformed multipart body: bad boundary line.');
          return false;
        }
        this.buf = buf.subarray(eol + 2);
        this.state = 'headers';
        return true;
      }
      case 'headers': {
        // A part with no headers starts directly with CRLF.
        let headerText: string;
        if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) {
          headerText = '';
          this.buf = buf.subarray(2);
        } else {
          const idx = buf.indexOf(HEADER_END);
          if (idx < 0) {
            if (buf.length > MAX_PART_HEADER_BYTES) throw new Error('Malformed multipart body: part headers too large.');
            return false;
          }
          headerText = buf.subarray(0, idx).toString('utf8');
          this.buf = buf.subarray(idx + 4);
        }
        this.startPart(headerText);
        this.state = 'body';
        return true;
      }
      case 'body': {
        const idx = buf.indexOf(this.delimiter);
        if (idx < 0) {
          const safe = buf.length - (this.delimiter.length - 1);
          if (safe > 0) {
            this.partData(buf.subarray(0, safe));
            this.buf = buf.subarray(safe);
          }
          return false;
        }
        if (idx > 0) this.partData(buf.subarray(0, idx));
        this.finishPart();
        this.buf = buf.subarray(idx + this.delimiter.length);
        this.state = 'afterDelimiter';
        return true;
      }
      default:
        return false;
    }
  }

  private keepTail(): void {
    const keep = this.delimiter.length - 1;
    if (this.buf.length > keep) this.buf = this.buf.subarray(this.buf.length - keep);
  }

  private startPart(headerText: string): void {
    let disposition = '';
    let contentType = 'application/octet-stream';
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const key = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (key === 'content-disposition') disposition = value;
      else if (key === 'content-type') contentType = value;
    }
    const name = dispositionParam(disposition, 'name') ?? '';
    const filename = dispositionParam(disposition, 'filename');
    if (filename !== undefined) {
      this.part = {
        kind: 'file',
        file: { field: name, filename, contentType, size: 0, sha256: '' },
        hash: createHash('sha256'),
      };
    } else {
      this.part = { kind: 'field', name, chunks: [], size: 0 };
    }
  }

  private partData(data: Buffer): void {
    const part = this.part;
    if (!part) return;
    if (part.kind === 'file') {
      if (part.file.size < HEAD_BYTES) part.head = Buffer.concat([part.head ?? Buffer.alloc(0), data.subarray(0, HEAD_BYTES - part.file.size)]);
      part.file.size += data.length;
      part.hash.update(data);
    } else {
      part.size += data.length;
      if (part.size > MAX_FIELD_BYTES) throw new Error(`Multipart field '${part.name}' is too large.`);
      // Copy: `data` may be a view over a buffer we keep reusing.
      part.chunks.push(Buffer.from(data));
    }
  }

  private finishPart(): void {
    const part = this.part;
    this.part = undefined;
    if (!part) return;
    if (part.kind === 'file') {
      part.file.sha256 = part.hash.digest('hex');
      if (part.head) FILE_HEADS.set(part.file, part.head);
      this.result.files.push(part.file);
    } else {
      this.result.fields[part.name] = Buffer.concat(part.chunks).toString('utf8');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the fake

interface OpenAIRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  parseError: string | undefined;
  multipart: boolean;
}

/** A 429 from the fake's own rate limit, with OpenAI's rate-limit headers. */
class RateLimitedError extends Error {
  constructor(readonly verdict: RateVerdict) {
    super('rate limited');
  }
}

/** Tokens OpenAI charges at admission: the prompt's estimate plus max_tokens (else what it writes). */
function admissionTokens(path: string, body: unknown): number {
  if (!isObject(body)) return 0;
  if (path === '/v1/embeddings') {
    const input = body.input;
    const texts = Array.isArray(input) ? input : [input];
    return approxTokens(texts.reduce((n: number, t) => n + (typeof t === 'string' ? t.length : 0), 0));
  }
  let chars = 0;
  for (const m of Array.isArray(body.messages) ? body.messages : []) chars += isObject(m) ? contentInfo(m.content).text.length : 0;
  const max = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : typeof body.max_tokens === 'number' ? body.max_tokens : 16;
  return approxTokens(chars) + max;
}

export class OpenAIFake extends FakeServer<RecordedRequest, OpenAIRequest, InjectedResponse> {
  /** The fake's own RPM/TPM limit (options `rpm`, `tpm`); counts what it admitted and refused. */
  readonly rateLimit: ProviderRateLimit;

  private constructor(server: http.Server, port: number, opts: OpenAIFakeOptions) {
    super(server, port, opts, {
      name: 'OpenAIFake',
      baseUrl: `http://127.0.0.1:${port}/v1`,
      requestIdHeader: 'x-request-id',
      jsonContentType: JSON_CT,
      rawTextInjections: true,
    });
    this.rateLimit = new ProviderRateLimit({ rpm: opts.rpm, tpm: opts.tpm });
  }

  static start(opts: OpenAIFakeOptions = {}): Promise<OpenAIFake> {
    return FakeServer.listen(opts, (server, port) => new OpenAIFake(server, port, opts));
  }

  // -------------------------------------------------------------------------------------------

  protected onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { path } = splitUrl(req.url);
    const method = req.method ?? 'GET';
    const contentType = req.headers['content-type'] ?? '';

    if (/^multipart\/form-data/i.test(contentType)) {
      const boundary = multipartBoundary(contentType);
      let parser: MultipartParser | undefined = boundary ? new MultipartParser(boundary) : undefined;
      let parseError: string | undefined = boundary ? undefined : 'Malformed multipart body: missing boundary.';
      req.on('data', (chunk: Buffer) => {
        if (!parser) return;
        try {
          parser.write(chunk);
        } catch (e) {
          parseError = (e as Error).message;
          parser = undefined;
        }
      });
      req.on('end', () => {
        let body: MultipartBody | undefined;
        if (parser) {
          try {
            parser.end();
            body = parser.result;
          } catch (e) {
            parseError = (e as Error).message;
          }
        }
        this.dispatch(res, path, { method, path, headers: req.headers, body, parseError, multipart: true });
      });
      return;
    }

    readJsonBody(req, (body, invalidJson) => {
      const parseError = invalidJson ? 'invalid json' : undefined;
      this.dispatch(res, path, { method, path, headers: req.headers, body, parseError, multipart: false });
    });
  }

  protected toRecorded(r: OpenAIRequest): RecordedRequest {
    return { at: Date.now(), method: r.method, path: r.path, headers: r.headers, body: r.body };
  }

  protected requestId(seq: number): string {
    return `req_fake${seq}`;
  }

  protected errorResponse(e: unknown): OutgoingResponse {
    if (e instanceof RateLimitedError) {
      const v = e.verdict;
      const out = jsonResponse(429, errorBody('Rate limit reached for requests', 'requests', null, 'rate_limit_exceeded'));
      Object.assign(out.headers, {
        'x-ratelimit-remaining-requests': String(v.remainingRequests),
        'x-ratelimit-remaining-tokens': String(v.remainingTokens),
        'x-ratelimit-reset-requests': `${Math.max(1, v.resetRequestsMs)}ms`,
        'x-ratelimit-reset-tokens': `${Math.max(1, v.resetTokensMs)}ms`,
      });
      return out;
    }
    return e instanceof ApiError
      ? apiErrorResponse(e)
      : jsonResponse(500, errorBody(`OpenAIFake internal error: ${(e as Error).message}`, 'server_error', null, null));
  }

  protected defaultInjectedBody(status: number): unknown {
    if (status === 429) return errorBody('Rate limit reached', 'requests', null, 'rate_limit_exceeded');
    if (status >= 500) return errorBody('The server had an error', 'server_error', null, null);
    if (status >= 400) return errorBody(`Injected error (HTTP ${status})`, 'invalid_request_error', null, null);
    return {};
  }

  protected answer({ method, path, body, parseError, multipart }: OpenAIRequest, seq: number): OutgoingResponse {
    if (method === 'POST' && this.rateLimit.enabled && (path === '/v1/chat/completions' || path === '/v1/embeddings')) {
      const verdict = this.rateLimit.check(admissionTokens(path, body));
      if (!verdict.ok) throw new RateLimitedError(verdict);
    }
    if (method === 'GET' && path === '/_fake/rate-limit') {
      const { admitted, refused, tokensAdmitted, admittedAt, admittedTokens, refusals } = this.rateLimit;
      return jsonResponse(200, { admitted, refused, tokens_admitted: tokensAdmitted, admitted_at: admittedAt, admitted_tokens: admittedTokens, refusals });
    }
    if (method === 'POST') {
      switch (path) {
        case '/v1/chat/completions':
          return chatCompletion(requireJsonObject(body, multipart || parseError !== undefined), `chatcmpl-${this.requestId(seq)}`);
        case '/v1/embeddings':
          return embeddings(requireJsonObject(body, multipart || parseError !== undefined));
        case '/v1/audio/transcriptions':
          return transcription(multipart ? (body as MultipartBody | undefined) : undefined, parseError);
      }
    } else if (method === 'GET') {
      if (path === '/v1/models') {
        return jsonResponse(200, { object: 'list', data: MODEL_IDS.map(modelObject) });
      }
      if (path.startsWith('/v1/models/')) {
        const id = decodeURIComponent(path.slice('/v1/models/'.length));
        if (MODEL_IDS.includes(id)) return jsonResponse(200, modelObject(id));
        throw new ApiError(404, `The model '${id}' does not exist`, 'model', 'model_not_found');
      }
    }
    throw new ApiError(404, `Invalid URL (${method} ${path})`);
  }
}

if (require.main === module) runFakeFromCli('openai-fake', 'OPENAI_FAKE_URL', (opts) => OpenAIFake.start(opts));
