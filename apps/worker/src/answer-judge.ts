import { Provider, Task } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { answersMatch } from '@lib/cache';
import { noMedia } from '@lib/providers';
import { ProviderLimiter } from '@lib/ratelimit';
import { AdapterRegistry } from './adapter-registry';
import { runIfRoomNow } from './now-or-never';

/** The longest a judge's call may take; it runs off the request path. */
const JUDGE_TIMEOUT_MS = 15_000;

const JUDGE_SYSTEM =
  'You compare two answers given to the same request. Reply with one word: YES if someone who made the request ' +
  'would accept either answer as the same answer (same meaning, same facts, same result), NO otherwise.';

const NO_MEDIA = noMedia('the semantic cache judge');

/**
 * Whether an explored (fresh) answer is the same as the cached one: the vCache observation.
 * By default (SEMANTIC_CACHE_JUDGE unset or `exact`) normalised text equality, or equality of
 * the parsed object for structured output. With `provider:model`, that chat model is asked; an
 * error, a timeout, a reply that is neither YES nor NO, or no room under the model's rate limits
 * right now (runIfRoomNow) falls back to the exact comparison, so a judge outage never teaches
 * the cache anything the default would not.
 */
export class AnswerJudge {
  constructor(
    private readonly config: GatewayConfig,
    private readonly adapters: AdapterRegistry,
    private readonly limiter: ProviderLimiter,
  ) {}

  async same(prompt: string, cached: Record<string, unknown>, fresh: Record<string, unknown>): Promise<boolean> {
    const exact = answersMatch(cached, fresh);
    const judge = this.config.semanticCache.judge;
    // Equal answers need no model to say so.
    if (!judge || exact) return exact;
    const adapter = this.adapters.get(judge.provider as Provider);
    if (!adapter) return exact;
    try {
      const out = await runIfRoomNow(
        this.limiter,
        adapter,
        {
          provider: judge.provider as Provider,
          model: judge.model,
          task: Task.Chat,
          inputs: { system: JUDGE_SYSTEM, prompts: [`Request:\n${prompt}\n\nAnswer A:\n${answerText(cached)}\n\nAnswer B:\n${answerText(fresh)}`] },
          parameters: { temperature: 0, max_tokens: 8 },
        },
        { signal: AbortSignal.timeout(JUDGE_TIMEOUT_MS), media: NO_MEDIA },
      );
      return parseVerdict(out.data.text) ?? exact;
    } catch {
      return exact;
    }
  }
}

/** YES / NO at the start of the reply (any case, punctuation after it); anything else: no verdict. */
export function parseVerdict(text: unknown): boolean | undefined {
  if (typeof text !== 'string') return undefined;
  const word = /^\W*(yes|no)\b/i.exec(text.trim());
  return word ? word[1].toLowerCase() === 'yes' : undefined;
}

function answerText(data: Record<string, unknown>): string {
  if (data.parsed !== undefined) return JSON.stringify(data.parsed);
  return typeof data.text === 'string' ? data.text : JSON.stringify(data);
}
