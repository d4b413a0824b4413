import { NormalizedRequest, Provider, Task } from '@lib/contracts';
import { answersMatch, normalizeAnswerText, semanticScopeOf, stableStringify } from './semantic-scope';

const chat = (inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}, model = 'gpt-4o-mini'): NormalizedRequest => ({
  provider: Provider.OpenAI,
  model,
  task: Task.Chat,
  inputs,
  parameters,
});

describe('semanticScopeOf', () => {
  const embedder = 'openai:text-embedding-3-small';

  it('one scope per provider, model, system prompt, parameters and embedder; the prompt text is what gets embedded', () => {
    const base = semanticScopeOf(chat({ prompts: ['Hi', 'there'] }, { temperature: 0.2, max_tokens: 5 }), embedder)!;
    expect(base.prompt).toBe('Hi\nthere');
    // Parameter order does not matter; the prompt is not part of the scope.
    expect(semanticScopeOf(chat({ prompts: ['Other'] }, { max_tokens: 5, temperature: 0.2 }), embedder)!.scope).toBe(base.scope);
    const others = [
      semanticScopeOf(chat({ prompts: ['Hi', 'there'] }, { temperature: 0.2, max_tokens: 5 }, 'gpt-4o'), embedder),
      semanticScopeOf(chat({ prompts: ['Hi', 'there'], system: 'Be terse.' }, { temperature: 0.2, max_tokens: 5 }), embedder),
      semanticScopeOf(chat({ prompts: ['Hi', 'there'] }, { temperature: 0.3, max_tokens: 5 }), embedder),
      semanticScopeOf(chat({ prompts: ['Hi', 'there'] }, { temperature: 0.2, max_tokens: 5, schema: { type: 'object' } }), embedder),
      semanticScopeOf(chat({ prompts: ['Hi', 'there'] }, { temperature: 0.2, max_tokens: 5 }), 'openai:text-embedding-3-large'),
    ];
    for (const other of others) expect(other!.scope).not.toBe(base.scope);
  });

  it('does not cache other tasks or prompts with images', () => {
    expect(semanticScopeOf({ ...chat({ text: 'x' }), task: Task.Embedding }, embedder)).toBeUndefined();
    expect(semanticScopeOf(chat({ prompts: ['What is this?'], image_url: 'https://example.com/a.png' }), embedder)).toBeUndefined();
  });
});

describe('answersMatch', () => {
  it('text answers match after case, spacing, Unicode form and trailing punctuation', () => {
    expect(normalizeAnswerText('  The capital is\nPARIS. ')).toBe('the capital is paris');
    expect(answersMatch({ text: 'Paris.' }, { text: ' paris' })).toBe(true);
    expect(answersMatch({ text: 'ｐａｒｉｓ' }, { text: 'paris' })).toBe(true);
    expect(answersMatch({ text: 'Paris' }, { text: 'Lyon' })).toBe(false);
  });

  it('structured answers match on their parsed JSON, whatever the key order', () => {
    expect(answersMatch({ text: '{"a":1,"b":2}', parsed: { a: 1, b: 2 } }, { text: '{"b":2,"a":1}', parsed: { b: 2, a: 1 } })).toBe(true);
    expect(answersMatch({ text: '{"a":1}', parsed: { a: 1 } }, { text: '{"a":2}', parsed: { a: 2 } })).toBe(false);
    expect(stableStringify({ b: [1, { d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[1,{"c":2,"d":1}]}');
  });
});
