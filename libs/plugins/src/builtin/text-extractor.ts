import { ErrorType, GatewayError, ValidationErrorItem } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { SchemaValidator } from '../schema-validator';
import { inferenceNameOf, PluginDefinition } from '../plugin-manifest';
import { E5Client, l2Normalise } from './e5-client';

export const TEXT_EXTRACTOR_NAME = 'text_extractor';
export const TEXT_EXTRACTOR_VERSION = 'v1';
export const E5_FEATURE = 'multilingual_e5_large_instruct_v1';
export const E5_DIMENSIONS = 1024;
/** The model card's own example task, used for queries that give none. */
export const E5_DEFAULT_TASK = 'Given a web search query, retrieve relevant passages that answer the query';

const INPUTS_SCHEMA = {
  type: 'object',
  properties: {
    text: { type: 'string', minLength: 1, description: 'One text: data is {"embedding", "dimensions"}' },
    texts: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: 2048, description: 'Many texts: data is {"embeddings", "dimensions"}, in order' },
  },
  oneOf: [{ required: ['text'] }, { required: ['texts'] }],
  additionalProperties: false,
};

const PARAMETERS_SCHEMA = {
  type: 'object',
  properties: {
    input_type: {
      enum: ['query', 'passage'],
      description: 'query: sent as "Instruct: {task}\\nQuery: {text}"; passage: the text as is. Default: query when task is given, else passage',
    },
    task: { type: 'string', minLength: 1, maxLength: 2000, description: `The instruction for queries. Default: "${E5_DEFAULT_TASK}"` },
  },
  additionalProperties: false,
};

/**
 * The builtin `mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1`: 1024-d,
 * L2-normalised embeddings of intfloat/multilingual-e5-large-instruct from a server the operator
 * runs (E5_BASE_URL). It runs on the plugins queue like any plugin, but inside the worker: it is
 * the gateway's own HTTP client, not foreign code.
 */
export function textExtractorDefinition(config: GatewayConfig): PluginDefinition {
  const validator = new SchemaValidator();
  return {
    name: TEXT_EXTRACTOR_NAME,
    version: TEXT_EXTRACTOR_VERSION,
    description:
      'Builtin multilingual text embedder (intfloat/multilingual-e5-large-instruct, 1024-d, L2-normalised), served by the text-embedding server at E5_BASE_URL',
    inferenceName: inferenceNameOf(TEXT_EXTRACTOR_NAME, TEXT_EXTRACTOR_VERSION),
    outputs: [{ feature_name: E5_FEATURE, feature_type: 'embedding', embedding_dim: E5_DIMENSIONS, distance_metric: 'cosine' }],
    inputsSchema: INPUTS_SCHEMA,
    parametersSchema: PARAMETERS_SCHEMA,
    timeoutMs: config.providerTimeoutMs,
    concurrency: config.workerConcurrency.plugins,
    builtin: true,
    env: [],
    validateInputs: validator.compile(INPUTS_SCHEMA),
    validateParameters: validator.compile(PARAMETERS_SCHEMA),
    extraChecks: (_inputs, parameters) => {
      const items: ValidationErrorItem[] = [];
      if (parameters.input_type === 'passage' && parameters.task !== undefined) {
        items.push({ loc: ['body', 'parameters', 'task'], msg: 'task applies to queries only: drop it or set input_type to "query"', type: 'value_error' });
      }
      return items;
    },
  };
}

/** Why the builtin cannot run here, or undefined when it can. */
export function textExtractorUnavailable(config: GatewayConfig): GatewayError | undefined {
  if (config.e5.baseUrl) return undefined;
  return new GatewayError(
    ErrorType.ServiceUnavailable,
    `The builtin ${TEXT_EXTRACTOR_NAME}@${TEXT_EXTRACTOR_VERSION} (multilingual-e5-large-instruct) is not configured on this gateway: ` +
      'the operator must set E5_BASE_URL to a text-embedding server (Hugging Face text-embeddings-inference, or an OpenAI-compatible /v1/embeddings)',
    'plugin_not_configured',
    { plugin: `${TEXT_EXTRACTOR_NAME}@${TEXT_EXTRACTOR_VERSION}`, variable: 'E5_BASE_URL' },
  );
}

/** The model's instruct format: queries carry the task, passages are embedded as they are. */
export function e5Format(text: string, parameters: Record<string, unknown>): string {
  const task = typeof parameters.task === 'string' ? parameters.task : undefined;
  const inputType = parameters.input_type ?? (task ? 'query' : 'passage');
  return inputType === 'query' ? `Instruct: ${task ?? E5_DEFAULT_TASK}\nQuery: ${text}` : text;
}

/** Runs one request against the E5 server; `data` is shaped like every other embedder's. */
export class TextExtractor {
  private readonly client?: E5Client;

  constructor(private readonly config: GatewayConfig) {
    if (config.e5.baseUrl) {
      this.client = new E5Client({
        baseUrl: config.e5.baseUrl,
        api: config.e5.api,
        model: config.e5.model,
        maxBatch: config.e5.maxBatch,
        apiKey: config.e5.apiKey,
        timeoutMs: config.providerTimeoutMs,
        label: `${TEXT_EXTRACTOR_NAME}@${TEXT_EXTRACTOR_VERSION}`,
      });
    }
  }

  async run(inputs: Record<string, unknown>, parameters: Record<string, unknown>, signal: AbortSignal) {
    if (!this.client) throw textExtractorUnavailable(this.config)!;
    const single = typeof inputs.text === 'string';
    const texts = (single ? [inputs.text as string] : (inputs.texts as string[])).map((t) => e5Format(t, parameters));
    const { vectors, tokensUsed } = await this.client.embed(texts, signal);
    const wrong = vectors.find((v) => v.length !== E5_DIMENSIONS);
    if (wrong) {
      throw new GatewayError(
        ErrorType.ServiceUnavailable,
        `The E5 server returned ${wrong.length}-d vectors; ${TEXT_EXTRACTOR_NAME}@${TEXT_EXTRACTOR_VERSION} is ${E5_DIMENSIONS}-d: is E5_BASE_URL serving intfloat/multilingual-e5-large-instruct?`,
        'e5_server_invalid_answer',
      );
    }
    const normalised = vectors.map(l2Normalise);
    const data = single ? { embedding: normalised[0], dimensions: E5_DIMENSIONS } : { embeddings: normalised, dimensions: E5_DIMENSIONS };
    return { data, tokensUsed };
  }
}
