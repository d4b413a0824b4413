import { LabelLimiter } from './label-limiter';

describe('LabelLimiter', () => {
  it('keeps the first values of each group, reports later ones as "other"', () => {
    const limiter = new LabelLimiter(2);
    expect(limiter.limit('openai', 'a')).toBe('a');
    expect(limiter.limit('openai', 'b')).toBe('b');
    expect(limiter.limit('openai', 'c')).toBe('other');
    expect(limiter.limit('openai', 'a')).toBe('a');
    // Groups are counted apart.
    expect(limiter.limit('google', 'c')).toBe('c');
  });

  it('cuts long values', () => {
    const limiter = new LabelLimiter(5, 4);
    expect(limiter.limit('g', 'abcdefgh')).toBe('abcd');
    expect(limiter.limit('g', 'abcdXYZ')).toBe('abcd');
  });
});
