import Anthropic from '@anthropic-ai/sdk';
import type { Base64ImageSource, ContentBlockParam, MessageCreateParamsNonStreaming, Tool, ToolUseBlock } from '@anthropic-ai/sdk/resources/messages/messages';
import { ErrorType, GatewayError, NormalizedRequest, Provider, Task } from '@lib/contracts';
import { AdapterContext, AdapterResult, InferenceAdapter } from '../inference-adapter';
import { parseStructuredOutput } from '../structured-output';
import { backstopTimeout, callWithTimeout, CHAT_IMAGE_TYPES, loadImages, omit } from '../adapter-helpers';
import { ANTHROPIC_DEFAULT_MAX_TOKENS } from './anthropic.tasks';
import { nodeHttpFetch } from '../node-http-fetch';

export interface AnthropicAdapterOptions {
  apiKey?: string;
  baseUrl?: string;
  /** Timeout of one call, in ms. */
  timeoutMs: number;
}

/** Parameters the gateway consumes or renames itself; every other one goes to the SDK as given. */
const NOT_PASSED_THROUGH = ['schema', 'schema_name', 'strict', 'stop', 'max_tokens'];

type ImageMediaType = Base64ImageSource['media_type'];

/**
 * Chat and vision through the official SDK. `maxRetries: 0`: the queue owns retries, so that
 * every retry is seen by the rate limiter and the backoff. Structured output is a forced tool
 * call, the way Anthropic recommends getting JSON that fits a schema.
 */
export class AnthropicAdapter implements InferenceAdapter {
  readonly provider = Provider.Anthropic;
  readonly tasks = [Task.Chat] as const;
  private readonly client: Anthropic;
  private readonly timeoutMs: number;

  constructor(options: AnthropicAdapterOptions) {
    this.timeoutMs = options.timeoutMs;
    this.client = new Anthropic({
      // Without a key the SDK falls back to profiles on disk and then refuses to send; a
      // key-less server reached through `baseUrl` gets a placeholder, as the OpenAI adapter does.
      apiKey: options.apiKey ?? 'no-key',
      baseURL: options.baseUrl,
      maxRetries: 0,
      // Node's fetch costs about twice the CPU per call (node-http-fetch.ts).
      fetch: nodeHttpFetch,
      // An explicit timeout also keeps the SDK from demanding streaming for a large max_tokens.
      timeout: backstopTimeout(options.timeoutMs),
    });
  }

  async run(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult> {
    if (request.task !== Task.Chat) {
      throw new GatewayError(ErrorType.BadRequest, `anthropic does not serve the ${request.task} task`, 'task_not_supported');
    }
    const { inputs, parameters } = request;
    const content: ContentBlockParam[] = (inputs.prompts as string[]).map((text) => ({ type: 'text', text }));
    for (const image of await loadImages(inputs, ctx, CHAT_IMAGE_TYPES, 'anthropic')) {
      content.push({ type: 'image', source: { type: 'base64', media_type: image.mime as ImageMediaType, data: image.data.toString('base64') } });
    }

    const body = {
      ...omit(parameters, NOT_PASSED_THROUGH),
      model: request.model,
      max_tokens: typeof parameters.max_tokens === 'number' ? parameters.max_tokens : ANTHROPIC_DEFAULT_MAX_TOKENS,
      messages: [{ role: 'user', content }],
    } as MessageCreateParamsNonStreaming & Record<string, unknown>;
    if (typeof inputs.system === 'string') body.system = inputs.system;
    if (parameters.stop != null) body.stop_sequences = Array.isArray(parameters.stop) ? (parameters.stop as string[]) : [parameters.stop as string];
    const schema = parameters.schema as Tool.InputSchema | undefined;
    const toolName = typeof parameters.schema_name === 'string' ? parameters.schema_name : 'response';
    if (schema) {
      body.tools = [{ name: toolName, description: 'Return the answer as structured data.', input_schema: schema }];
      body.tool_choice = { type: 'tool', name: toolName };
    }

    const res = await callWithTimeout(ctx.signal, this.timeoutMs, (signal) => this.client.messages.create(body, { signal }));
    const finishReason: string = res.stop_reason ?? 'unknown';
    const text = res.content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
    const data: Record<string, unknown> = { text, finish_reason: finishReason };
    if (schema) {
      const call = res.content.find((block): block is ToolUseBlock => block.type === 'tool_use' && block.name === toolName);
      // A tool call cut off by max_tokens may hold half an object: the text path reports it instead.
      if (call && finishReason !== 'max_tokens') {
        data.parsed = call.input;
        data.text = JSON.stringify(call.input);
      } else {
        data.parsed = parseStructuredOutput(Provider.Anthropic, text, finishReason);
      }
    }
    const prompt = res.usage.input_tokens;
    const completion = res.usage.output_tokens;
    return { data, tokensUsed: { prompt, completion, total: prompt + completion } };
  }
}
