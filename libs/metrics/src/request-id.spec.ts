import { acceptRequestId } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('acceptRequestId', () => {
  it("keeps a client's id made of [A-Za-z0-9._:-], up to 128 characters", () => {
    expect(acceptRequestId('req-1.2:abc_DEF')).toBe('req-1.2:abc_DEF');
    expect(acceptRequestId('x'.repeat(128))).toBe('x'.repeat(128));
    expect(acceptRequestId(['first', 'second'])).toBe('first');
  });

  it('replaces a missing, empty, too long or unsafe id with a new UUID', () => {
    for (const bad of [undefined, '', 'x'.repeat(129), 'has space', 'quote"', 'new\nline', 'ünï', '{"json":1}']) {
      const id = acceptRequestId(bad);
      expect(id).toMatch(UUID);
    }
    expect(acceptRequestId(undefined)).not.toBe(acceptRequestId(undefined));
  });
});
