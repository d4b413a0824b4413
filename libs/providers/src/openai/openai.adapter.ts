import { createReadStream } from 'node:fs';
import OpenAI, { toFile } from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { ErrorType, GatewayError, NormalizedRequest, Provider, Task, TokensUsed } from '@lib/contracts';
import { AdapterContext, AdapterResult, InferenceAdapter } from '../inference-adapter';
import { CHAT_GATEWAY_PARAMETERS } from './openai.tasks';
import { parseStructuredOutput } from '../structured-output';
import { backstopTimeout, callWithTimeout, CHAT_IMAGE_TYPES, loadImages, omit } from '../adapter-helpers';
import { nodeHttpFetch } from '../node-http-fetch';

/** OpenAI's upload limit for one transcription request. */
export const OPENAI_TRANSCRIPTION_MAX_BYTES = 25 * 1024 * 1024;

export interface OpenAIAdapterOptions {
  apiKey?: string;
  baseUrl?: string;
  /** Timeout of one call, in ms. */
  timeoutMs: number;
}

/** Models that take `max_completion_tokens` and refuse `max_tokens`. */
const COMPLETION_TOKENS_MODELS = /^(o\d|gpt-5)/i;

/**
 * Chat, vision, embeddings and transcription through the official SDK. `maxRetries: 0`: the
 * queue owns retries, so that every retry is seen by the rate limiter and the backoff.
 */
export class OpenAIAdapter implements InferenceAdapter {
  readonly provider = Provider.OpenAI;
  readonly tasks = [Task.Chat, Task.Embedding, Task.Transcription] as const;
  private readonly client: OpenAI;
  private readonly timeoutMs: number;

  constructor(options: OpenAIAdapterOptions) {
    this.timeoutMs = options.timeoutMs;
    this.client = new OpenAI({
      // An OpenAI-compatible local server may need no key; the SDK insists on one.
      apiKey: options.apiKey ?? 'no-key',
      baseURL: options.baseUrl,
      maxRetries: 0,
      // Node's fetch costs about twice the CPU per call (node-http-fetch.ts).
      fetch: nodeHttpFetch,
      timeout: backstopTimeout(options.timeoutMs),
    });
  }

  run(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    switch (request.task) {
      case Task.Chat:
        return this.chat(request, ctx);
      case Task.Embedding:
        return this.embed(request, ctx);
      case Task.Transcription:
        return this.transcribe(request, ctx);
      default:
        throw new GatewayError(ErrorType.BadRequest, `openai does not serve the ${request.task} task`, 'task_not_supported');
    }
  }

  private async chat(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    const { inputs, parameters } = request;
    const content: ChatCompletionContentPart[] = (inputs.prompts as string[]).map((text) => ({ type: 'text', text }));
    for (const image of await loadImages(inputs, ctx, CHAT_IMAGE_TYPES, 'openai')) {
      content.push({ type: 'image_url', image_url: { url: `data:${image.mime};base64,${image.data.toString('base64')}` } });
    }
    const messages: ChatCompletionMessageParam[] = [];
    if (typeof inputs.system === 'string') messages.push({ role: 'system', content: inputs.system });
    messages.push({ role: 'user', content });

    const passthrough = omit(parameters, CHAT_GATEWAY_PARAMETERS);
    const body = { ...passthrough, model: request.model, messages } as ChatCompletionCreateParamsNonStreaming & Record<string, unknown>;
    if (typeof parameters.max_tokens === 'number') {
      body[COMPLETION_TOKENS_MODELS.test(request.model) ? 'max_completion_tokens' : 'max_tokens'] = parameters.max_tokens;
    }
    const schema = parameters.schema as Record<string, unknown> | undefined;
    if (schema) {
      body.response_format = {
        type: 'json_schema',
        json_schema: {
          name: typeof parameters.schema_name === 'string' ? parameters.schema_name : 'response',
          schema,
          strict: parameters.strict === true,
        },
      };
    }

    const res = await callWithTimeout(ctx.signal, this.timeoutMs, (signal) => this.client.chat.completions.create(body, { signal }));
    const choice = res.choices[0];
    const text = choice?.message?.content ?? choice?.message?.refusal ?? '';
    const finishReason = choice?.finish_reason ?? 'unknown';
    const data: Record<string, unknown> = { text, finish_reason: finishReason };
    if (schema) data.parsed = parseStructuredOutput(Provider.OpenAI, text, finishReason);
    return { data, tokensUsed: usage(res.usage?.prompt_tokens, res.usage?.completion_tokens, res.usage?.total_tokens) };
  }

  private async embed(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    const { inputs, parameters } = request;
    const single = typeof inputs.text === 'string';
    const input = single ? (inputs.text as string) : (inputs.texts as string[]);
    const res = await callWithTimeout(ctx.signal, this.timeoutMs, (signal) => this.client.embeddings.create({ ...parameters, model: request.model, input }, { signal }));
    const vectors = [...res.data].sort((a, b) => a.index - b.index).map((d) => d.embedding as number[]);
    const dimensions = vectors[0]?.length ?? 0;
    const data = single ? { embedding: vectors[0], dimensions } : { embeddings: vectors, dimensions };
    const prompt = res.usage?.prompt_tokens;
    return { data, tokensUsed: usage(prompt, prompt === undefined ? undefined : 0, res.usage?.total_tokens) };
  }

  private async transcribe(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    const input = request.inputs.audio_url != null ? 'audio_url' : 'audio_base64';
    const audio = await ctx.media.file(input);
    if (audio.size > OPENAI_TRANSCRIPTION_MAX_BYTES) {
      throw new GatewayError(
        ErrorType.BadRequest,
        `inputs.${input} is ${audio.size} bytes; OpenAI transcribes at most ${OPENAI_TRANSCRIPTION_MAX_BYTES} bytes (25 MiB) per request`,
        'media_too_large',
        { bytes: audio.size, max_bytes: OPENAI_TRANSCRIPTION_MAX_BYTES },
      );
    }
    // whisper-1 alone gives segments and duration (verbose_json); the gpt-4o models answer json.
    const verbose = request.model.toLowerCase().startsWith('whisper');
    const file = await toFile(createReadStream(audio.path), `audio.${audio.ext}`, { type: audio.mime });
    const res = (await callWithTimeout(ctx.signal, this.timeoutMs, (signal) =>
      this.client.audio.transcriptions.create({ ...request.parameters, model: request.model, file, response_format: verbose ? 'verbose_json' : 'json' }, { signal }),
    )) as Omit<OpenAI.Audio.Transcriptions.TranscriptionVerbose, 'usage'> & { usage?: TranscriptionUsage };
    const data = {
      text: res.text,
      language: res.language,
      duration: res.duration,
      segments: (res.segments ?? []).map((s) => ({ start: s.start, end: s.end, text: s.text })),
    };
    const u = res.usage?.type === 'tokens' ? res.usage : undefined;
    return { data, tokensUsed: usage(u?.input_tokens, u?.output_tokens, u?.total_tokens) };
  }
}

/** `json` answers report tokens, `verbose_json` answers report seconds. */
interface TranscriptionUsage {
  type?: string;
  input_tokens?: number;
  output_tokens?: number;
  total_tokens?: number;
}

function usage(prompt?: number, completion?: number, total?: number): TokensUsed | undefined {
  if (prompt === undefined && completion === undefined && total === undefined) return undefined;
  const p = prompt ?? 0;
  const c = completion ?? 0;
  return { prompt: p, completion: c, total: total ?? p + c };
}
