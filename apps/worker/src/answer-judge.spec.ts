import { parseVerdict } from './answer-judge';

describe('parseVerdict: the judge model reply', () => {
  it('reads YES or NO at the start, in any case, with punctuation around it', () => {
    expect(parseVerdict('YES')).toBe(true);
    expect(parseVerdict(' yes.')).toBe(true);
    expect(parseVerdict('**Yes**, both say Paris')).toBe(true);
    expect(parseVerdict('NO')).toBe(false);
    expect(parseVerdict('no - they differ')).toBe(false);
  });

  it('anything else is no verdict (the exact comparison decides)', () => {
    expect(parseVerdict('Maybe')).toBeUndefined();
    expect(parseVerdict('Yesterday it was')).toBeUndefined();
    expect(parseVerdict('Nobody knows')).toBeUndefined();
    expect(parseVerdict('')).toBeUndefined();
    expect(parseVerdict(undefined)).toBeUndefined();
    expect(parseVerdict({ text: 'YES' })).toBeUndefined();
  });
});
