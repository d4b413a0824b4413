import { FetchAdmitSubject, NormalizedRequest, Task, TokensUsed } from '@lib/contracts';

/** Roughly four characters per token for the tokenizers of the providers we serve. */
const CHARS_PER_TOKEN = 4;
/** What OpenAI charges for one high-detail image tile set; a safe figure for every provider. */
const TOKENS_PER_IMAGE = 765;

/**
 * Tokens a request is charged before the call: its text (prompts, system, texts) at four
 * characters a token, images at a flat rate, and for chat the output it may produce
 * (`max_tokens`, else the provider's `default_max_tokens`). Transcription and video are
 * limited by requests only and cost 0 here.
 */
export function estimateTokens(request: NormalizedRequest, defaultMaxTokens: number): number {
  const { inputs, parameters, task } = request;
  let chars = 0;
  for (const name of ['prompts', 'system', 'text', 'texts']) chars += charsOf(inputs[name]);
  let tokens = Math.ceil(chars / CHARS_PER_TOKEN);
  if (task === Task.Transcription) return 0;
  if (task === Task.Chat) {
    if (inputs.image_url || inputs.image_base64) tokens += TOKENS_PER_IMAGE;
    const maxTokens = parameters.max_tokens;
    tokens += typeof maxTokens === 'number' && maxTokens > 0 ? maxTokens : defaultMaxTokens;
  }
  return tokens;
}

/** What the provider reported, when it reported anything. */
export function reportedTokens(usage: TokensUsed | null | undefined): number | undefined {
  return usage && Number.isFinite(usage.total) ? usage.total : undefined;
}

function charsOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + charsOf(v), 0);
  return 0;
}

/**
 * The limiter subject the API puts first in a job's data when its worker may admit it in the
 * round trip that fetches it (InferenceJobData.admit): chat that no cache may answer, and a
 * single-text embedding (marked: a worker with an exact cache or coalescing charges it
 * otherwise). Other jobs (lists of texts, which may be split; long media, which is cut first)
 * are admitted at the rate gate.
 */
export function fetchAdmitSubject(request: NormalizedRequest, semanticCache: boolean): FetchAdmitSubject | undefined {
  if (request.task === Task.Embedding && typeof request.inputs.text === 'string') return [request.model, estimateTokens(request, 0), 0, 1];
  if (request.task !== Task.Chat || semanticCache) return undefined;
  const maxTokens = request.parameters.max_tokens;
  return [request.model, estimateTokens(request, 0), typeof maxTokens === 'number' && maxTokens > 0 ? 0 : 1];
}
