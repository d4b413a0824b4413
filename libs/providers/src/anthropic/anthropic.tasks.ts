import { Task } from '@lib/contracts';
import { TaskSpec } from '../task-inputs';

/** Sent when the client gives no `max_tokens`: the Messages API refuses a request without one. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export const ANTHROPIC_CHAT: TaskSpec = {
  task: Task.Chat,
  exactlyOne: [['prompts']],
  inputs: { prompts: 'string[]', system: 'string', image_url: 'url', image_base64: 'base64' },
  parameters: {
    // Anthropic's range is 0..1, not OpenAI's 0..2.
    temperature: { kind: 'number', min: 0, max: 1 },
    max_tokens: { kind: 'integer', min: 1 },
    top_p: { kind: 'number', min: 0, max: 1 },
    top_k: { kind: 'integer', min: 1 },
    stop: { kind: 'string|string[]' },
    schema: { kind: 'object' },
    schema_name: { kind: 'string' },
  },
};

/** Every Claude model chats (with or without images), so new model names need no allow-list. */
export function anthropicTaskSpec(_model: string): TaskSpec {
  return ANTHROPIC_CHAT;
}
