import { NormalizedRequest, Provider, Task } from '@lib/contracts';
import { estimateTokens, reportedTokens } from './token-estimate';

const request = (task: Task, inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}): NormalizedRequest => ({
  provider: Provider.OpenAI,
  model: 'm',
  task,
  inputs,
  parameters,
});

describe('estimateTokens', () => {
  it('charges chat its text at four characters a token plus the output it may write', () => {
    expect(estimateTokens(request(Task.Chat, { prompts: ['a'.repeat(40)], system: 'b'.repeat(8) }, { max_tokens: 100 }), 1024)).toBe(112);
    expect(estimateTokens(request(Task.Chat, { prompts: ['abcd'] }), 1024)).toBe(1025);
  });

  it('charges an image a flat 765 tokens', () => {
    expect(estimateTokens(request(Task.Chat, { prompts: ['abcd'], image_url: 'https://x/y.png' }, { max_tokens: 1 }), 0)).toBe(767);
  });

  it('charges embeddings their input only', () => {
    expect(estimateTokens(request(Task.Embedding, { texts: ['a'.repeat(10), 'b'.repeat(10)] }), 1024)).toBe(5);
    expect(estimateTokens(request(Task.Embedding, { text: 'abc' }), 1024)).toBe(1);
  });

  it('charges transcription nothing: it is limited by requests', () => {
    expect(estimateTokens(request(Task.Transcription, { audio_url: 'https://x/a.mp3' }), 1024)).toBe(0);
  });

  it('reads what the provider reported', () => {
    expect(reportedTokens({ prompt: 3, completion: 4, total: 7 })).toBe(7);
    expect(reportedTokens(null)).toBeUndefined();
  });
});
