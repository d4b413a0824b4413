import { Task } from '@lib/contracts';
import { chatTaskSpec, TaskSpec } from '../task-inputs';

/** Parameters the gateway itself consumes for chat; they are never sent as-is to a provider. */
export const CHAT_GATEWAY_PARAMETERS = ['schema', 'schema_name', 'strict', 'max_tokens'];

export const OPENAI_CHAT: TaskSpec = chatTaskSpec({
  temperature: { kind: 'number', min: 0, max: 2 },
  seed: { kind: 'integer' },
  schema_name: { kind: 'string' },
  strict: { kind: 'boolean' },
});

export const OPENAI_EMBEDDING: TaskSpec = {
  task: Task.Embedding,
  exactlyOne: [['text', 'texts']],
  inputs: { text: 'string', texts: 'string[]' },
  parameters: { dimensions: { kind: 'integer', min: 1 } },
};

export const OPENAI_TRANSCRIPTION: TaskSpec = {
  task: Task.Transcription,
  exactlyOne: [['audio_url', 'audio_base64']],
  inputs: { audio_url: 'url', audio_base64: 'base64' },
  parameters: {
    language: { kind: 'string' },
    prompt: { kind: 'string' },
    temperature: { kind: 'number', min: 0, max: 1 },
  },
};

/**
 * The task follows the model family, so new model names pass through without an allow-list:
 * anything with "embedding" embeds, whisper-* and *-transcribe transcribe, everything else chats.
 */
export function openaiTaskSpec(model: string): TaskSpec {
  const m = model.toLowerCase();
  if (m.includes('embedding')) return OPENAI_EMBEDDING;
  if (m.startsWith('whisper') || m.includes('transcribe')) return OPENAI_TRANSCRIPTION;
  return OPENAI_CHAT;
}
