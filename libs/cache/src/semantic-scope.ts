import { createHash } from 'node:crypto';
import { NormalizedRequest, Task } from '@lib/contracts';

/** JSON with object keys sorted, so that equal values give equal strings. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * What a chat request is cached under: entries are compared only within one provider, model,
 * system prompt and set of parameters (the schema is a parameter), and one embedder, since
 * vectors of two embedders are not comparable. Undefined when the request cannot be cached
 * semantically: not a chat, or it carries images (the prompt text alone does not decide the answer).
 */
export function semanticScopeOf(request: NormalizedRequest, embedder: string): { scope: string; prompt: string } | undefined {
  if (request.task !== Task.Chat) return undefined;
  const { prompts, system, ...rest } = request.inputs;
  if (!Array.isArray(prompts) || prompts.some((p) => typeof p !== 'string')) return undefined;
  if (Object.values(rest).some((v) => v !== undefined && v !== null)) return undefined;
  const key = stableStringify({ embedder, provider: request.provider, model: request.model, system: system ?? null, parameters: request.parameters });
  return { scope: createHash('sha256').update(key).digest('hex').slice(0, 32), prompt: (prompts as string[]).join('\n') };
}

/** Case, Unicode form, spacing and trailing punctuation do not make two answers different. */
export function normalizeAnswerText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim().replace(/[\s.!?。]+$/u, '');
}

/**
 * The default judge of an exploration: does the fresh answer match the cached one? Structured
 * answers compare their parsed JSON; text answers compare after normalizeAnswerText.
 */
export function answersMatch(cached: Record<string, unknown>, fresh: Record<string, unknown>): boolean {
  if (cached.parsed !== undefined || fresh.parsed !== undefined) return stableStringify(cached.parsed) === stableStringify(fresh.parsed);
  return typeof cached.text === 'string' && typeof fresh.text === 'string' && normalizeAnswerText(cached.text) === normalizeAnswerText(fresh.text);
}
