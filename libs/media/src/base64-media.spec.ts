import { randomBytes } from 'node:crypto';
import { decodeBase64Media } from './base64-media';
import { MediaError } from './media-error';

function catchError(fn: () => unknown): MediaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MediaError);
    return err as MediaError;
  }
  throw new Error('expected a MediaError');
}

describe('decodeBase64Media', () => {
  const data = randomBytes(1000);
  const std = data.toString('base64');

  it('decodes raw standard base64', () => {
    expect(decodeBase64Media(std, 1000, 'image').equals(data)).toBe(true);
  });

  it('decodes URL-safe base64 without padding', () => {
    const bin = Buffer.from([0xfb, 0xff, 0xfe, 0x3e, 0x3f]); // needs + / (standard) or - _ (URL-safe)
    const urlSafe = bin.toString('base64url');
    expect(urlSafe).toMatch(/[-_]/);
    expect(urlSafe).not.toMatch(/=/);
    expect(decodeBase64Media(urlSafe, 100, 'audio').equals(bin)).toBe(true);
  });

  it('accepts missing padding on standard base64', () => {
    expect(decodeBase64Media('aGk', 10, 'x').toString()).toBe('hi');
    expect(decodeBase64Media('aGk=', 10, 'x').toString()).toBe('hi');
  });

  it('ignores whitespace and line breaks', () => {
    const wrapped = std.replace(/.{76}/g, '$&\r\n');
    expect(wrapped).toContain('\n');
    expect(decodeBase64Media(`  ${wrapped}\n`, 1000, 'image').equals(data)).toBe(true);
  });

  it('decodes a data URL', () => {
    expect(decodeBase64Media(`data:image/png;base64,${std}`, 1000, 'image').equals(data)).toBe(true);
    expect(decodeBase64Media(`DATA:audio/wav;charset=binary;BASE64,${std}`, 1000, 'audio').equals(data)).toBe(true);
  });

  it.each([
    ['not base64 at all', 'hello world!'],
    ['a URL', 'https://example.com/cat.png'],
    ['non-ASCII characters', 'abcd\u00e9fgh'],
    ['only padding', '===='],
    ['a truncated quantum', 'abcde'],
    ['padding in the middle', 'ab==cd=='],
    ['too much padding', 'ab==='],
    ['wrong padding length', 'abc=='],
    ['a data URL that is not base64', 'data:text/plain,hello'],
    ['a data URL without a comma', 'data:image/png;base64'],
  ])('rejects %s as invalid_base64 naming the field', (_name, value) => {
    const err = catchError(() => decodeBase64Media(value, 1000, 'inputs.image'));
    expect(err.code).toBe('invalid_base64');
    expect(err.message).toContain('inputs.image');
    expect(err.retryable).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['whitespace only', '  \n\t '],
    ['an empty data URL', 'data:image/png;base64,'],
  ])('rejects %s input', (_name, value) => {
    const err = catchError(() => decodeBase64Media(value, 1000, 'video'));
    expect(err.code).toBe('invalid_base64');
    expect(err.message).toContain('video');
  });

  it('rejects media over the limit', () => {
    const err = catchError(() => decodeBase64Media(std, 999, 'image'));
    expect(err.code).toBe('media_too_large');
    expect(err.message).toContain('image');
    expect(err.message).toContain('999');
  });

  it('accepts media exactly at the limit', () => {
    expect(decodeBase64Media(std, 1000, 'image')).toHaveLength(1000);
    expect(decodeBase64Media(Buffer.alloc(1001).toString('base64'), 1001, 'image')).toHaveLength(1001);
  });

  it('refuses a huge string from its length, without decoding it', () => {
    const huge = Buffer.alloc(40 * 1024 * 1024, 'A').toString('latin1'); // 30 MB once decoded
    const spy = jest.spyOn(Buffer, 'from');
    try {
      const err = catchError(() => decodeBase64Media(huge, 1024 * 1024, 'image'));
      expect(err.code).toBe('media_too_large');
      expect(spy).not.toHaveBeenCalled(); // refused from the length alone: nothing was decoded
    } finally {
      spy.mockRestore();
    }
  });

  // Correctness only: speed is for benchmarks, not test assertions on a shared 2-core machine.
  it('decodes a 30 MB data URL exactly', () => {
    const big = randomBytes(30 * 1024 * 1024);
    const encoded = `data:video/mp4;base64,${big.toString('base64')}`;
    expect(decodeBase64Media(encoded, 30 * 1024 * 1024, 'video').equals(big)).toBe(true);
  });

  it('decodes a 30 MB payload with line breaks exactly', () => {
    const big = randomBytes(30 * 1024 * 1024);
    const encoded = big.toString('base64').replace(/.{76}/g, '$&\n');
    expect(decodeBase64Media(encoded, 30 * 1024 * 1024, 'video').equals(big)).toBe(true);
  });
});
