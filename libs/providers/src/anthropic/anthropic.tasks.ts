import { chatTaskSpec, TaskSpec } from '../task-inputs';

/** Sent when the client gives no `max_tokens`: the Messages API refuses a request without one. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export const ANTHROPIC_CHAT: TaskSpec = chatTaskSpec({
  // Anthropic's range is 0..1, not OpenAI's 0..2.
  temperature: { kind: 'number', min: 0, max: 1 },
  top_k: { kind: 'integer', min: 1 },
  schema_name: { kind: 'string' },
});

/** Every Claude model chats (with or without images), so new model names need no allow-list. */
export function anthropicTaskSpec(_model: string): TaskSpec {
  return ANTHROPIC_CHAT;
}
