import { NormalizedRequest, Provider, Task } from '@lib/contracts';
import { estimateTokens, fetchAdmitSubject, reportedTokens } from './token-estimate';

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

describe('fetchAdmitSubject', () => {
  it('marks chat without the semantic cache, with what the limiter would charge (default_max_tokens added by the worker)', () => {
    const withMax = request(Task.Chat, { prompts: ['a'.repeat(40)] }, { max_tokens: 100 });
    const withoutMax = request(Task.Chat, { prompts: ['abcd'] });
    expect(fetchAdmitSubject(withMax, false)).toEqual(['m', 110, 0]);
    expect(fetchAdmitSubject(withoutMax, false)).toEqual(['m', 1, 1]);
    // What the rate gate charges the same requests: the same figure once the default is added.
    expect(estimateTokens(withMax, 1024)).toBe(110);
    expect(estimateTokens(withoutMax, 1024)).toBe(1 + 1024);
  });

  it('marks a single-text embedding as such (admitted on fetch only where no cache or coalescing changes its charge)', () => {
    expect(fetchAdmitSubject(request(Task.Embedding, { text: 'abcdefgh' }), false)).toEqual(['m', 2, 0, 1]);
  });

  it('leaves other jobs to the rate gate: lists of texts, transcription, semantic-cache chat', () => {
    expect(fetchAdmitSubject(request(Task.Embedding, { texts: ['x', 'y'] }), false)).toBeUndefined();
    expect(fetchAdmitSubject(request(Task.Transcription, { audio_url: 'https://x/a.mp3' }), false)).toBeUndefined();
    expect(fetchAdmitSubject(request(Task.Chat, { prompts: ['x'] }), true)).toBeUndefined();
  });
});
